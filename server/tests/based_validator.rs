//! Validator tests: the reference's examples and real-file shapes must pass, and
//! every rule has an invalid case pinned to its exact line and column.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use kafka_server::based::{Diagnostic, Severity, describe_for_model, has_errors, render, validate};
use proptest::prelude::*;

/// (code, line, column) of every diagnostic, in order.
fn found(src: &str) -> Vec<(String, usize, usize)> {
    validate(src).into_iter().map(|d| (d.code, d.line, d.column)).collect()
}

fn expect(src: &str, expected: &[(&str, usize, usize)]) {
    let got = found(src);
    let want: Vec<(String, usize, usize)> = expected.iter().map(|(c, l, k)| (c.to_string(), *l, *k)).collect();
    assert_eq!(got, want, "diagnostics for:\n{src}\n{:#?}", validate(src));
}

fn assert_clean(src: &str) {
    let diags = validate(src);
    assert!(diags.is_empty(), "expected no diagnostics for:\n{src}\ngot {diags:#?}");
}

// ---- valid programs ---------------------------------------------------------

#[test]
fn reference_valid_example() {
    assert_clean(
        r#"say("Hi, I book table reservations.", exact=True)
loop:
    booking = talk("Ask for the party size and the time. Exit once both are known.", True)
until "user gave party size and time":
    details = booking.ask(question="Return party size and time.", example={"size": 2, "time": "19:30"})
    say(f"Booked for {details['size']} at {details['time']}.", exact=True)
until "user wants to cancel":
    return
"#,
    );
}

#[test]
fn real_file_shapes_are_accepted() {
    assert_clean(
        r#"import time
from datetime import datetime as dt, timedelta

API = "https://api.example.com"  # base url

def fetch(city, *, units="metric", **extra):
    data = api.get_req(url=f"{API}/weather", params={"q": city, "units": units}).ask(
        question="Return the temperature.", example={"temp": 21.5})
    return data["temp"] if data else None

async def notify(to):
    result = await send_sms(to=to, content="Hi", from_number="+15550000")
    return result.success

say("Welcome!", exact=True)
loop:
    # The talk line may be preceded by a comment.
    res = talk(
        """You are a triage agent.
        Ask what the user needs.""",
        False,
        {"name": "Kafka"},
    )
until "the user wants the weather":
    city = res.ask(question="Which city?", example={"city": "Paris"})
    if city["city"]:
        loop:
            w = talk(f"Tell the weather in {city['city']}: {fetch(city['city'])}", True)
        until "user is done":
            break
    else:
        continue
until "the user wants to leave":
    for i, item in enumerate([x * 2 for x in range(3) if x]):
        if i > 1:
            break
    try:
        total = sum({k: v for k, v in {"a": 1}.items()}.values())
    except (KeyError, ValueError) as exc:
        print(exc)
    finally:
        done()
    return total
x, y = 1, 2
matrix[0][1:3] = [a ** -2, ~b, not c, d // 2]
x += 1
value = None if x is not None else lambda q, r=2: q + r
with open("f") as fh, lock:
    pass
print(f"{x!r:>10} {y=} {{literal}} {'nested'}")
text = r"\d+" + b"\x00".decode() + 'it\'s' + u"ok"
numbers = [0x1F, 0o17, 0b101, 1_000, 3.14, 1e-3, 2j, .5]
s = {1, 2, 3}
t = ()
class Greeter(Base, metaclass=Meta):
    greeting: str = "hi"
"#,
    );
}

#[test]
fn crlf_tabs_and_continuations() {
    assert_clean("loop:\r\n\tr = talk(\"x\", True)\r\nuntil \"done\":\r\n\tx = 1 + \\\r\n\t    2\r\n\treturn x\r\n");
}

#[test]
fn headers_with_comments_generators_and_bom() {
    assert_clean(
        "\u{feff}loop:  # ask\n    r = talk(\"x\")  # the one talk\nuntil \"done\":  # leave\n    return  # back\n\ndef gen(n):\n    yield n\n    yield from range(n)\n    x = yield\n",
    );
    assert_clean("if (n := len(a)) > 10:\n    print(a[::2], a[1:], a[:, 0], *a, **kw)\n");
    assert_clean(
        "@decorator(1)\nasync def f(a: int = 1, /, *args, b, **kw) -> str:\n    async with x as y:\n        async for i in y:\n            await i\n",
    );
}

#[test]
fn match_and_parenthesized_with() {
    assert_clean(
        "match cmd.split():\n    case [\"go\", where] if where:\n        say(where)\n    case {\"k\": v}:\n        pass\n    case _:\n        pass\nmatch = 1\n",
    );
    assert_clean("with (open(a) as f, open(b) as g):\n    pass\nwith (a, b):\n    pass\n");
    expect("def f(a=1, b):\n    pass\n", &[("R8", 1, 12)]);
    assert_clean("def f(a=1, *, b):\n    pass\n");
}

#[test]
fn lower_case_booleans_only_warn() {
    let diags = validate("flag = {\"is_return\": true}\n");
    assert!(!has_errors(&diags));
    assert_eq!(diags.len(), 1);
    assert_eq!(
        (diags[0].code.as_str(), diags[0].severity),
        ("W-bool", Severity::Warning)
    );
    assert_eq!((diags[0].line, diags[0].column), (1, 22));
}

#[test]
fn talk_outside_loop_is_a_warning() {
    expect("res = talk(\"hi\", True)\n", &[("W-talk", 1, 7)]);
    assert!(!has_errors(&validate("res = talk(\"hi\", True)\n")));
}

// ---- one invalid case per rule ------------------------------------------------

#[test]
fn r1_reference_invalid_example() {
    expect(
        "loop:\n    booking = talk(\"Ask for the party size.\", True)\n    say(\"thanks\")\nuntil \"user gave party size\":\n    return\n",
        &[("R1", 3, 5)],
    );
}

#[test]
fn r1_talk_must_be_assigned_and_alone() {
    expect("loop:\n    talk(\"x\")\nuntil \"a\":\n    pass\n", &[("R1", 2, 5)]);
    expect("loop:\n    say(\"x\")\nuntil \"a\":\n    pass\n", &[("R1", 2, 5)]);
}

#[test]
fn r2_loop_without_until() {
    expect("loop:\n    r = talk(\"x\")\nsay(\"after\")\n", &[("R2", 1, 1)]);
    expect("if x:\n    loop:\n        r = talk(\"x\")\n", &[("R2", 2, 5)]);
}

#[test]
fn r3_condition_must_be_plain_string() {
    expect("loop:\n    r = talk(\"x\")\nuntil x > 3:\n    pass\n", &[("R3", 3, 7)]);
    expect(
        "loop:\n    r = talk(\"x\")\nuntil f\"got {x}\":\n    pass\n",
        &[("R3", 3, 7)],
    );
    expect(
        "loop:\n    r = talk(\"x\")\nuntil \"a\" \"b\":\n    pass\n",
        &[("R3", 3, 7)],
    );
}

#[test]
fn r4_orphan_until() {
    expect("until \"a\":\n    pass\n", &[("R4", 1, 1)]);
    expect(
        "loop:\n    r = talk(\"x\")\nuntil \"a\":\n    pass\nx = 1\nuntil \"b\":\n    pass\n",
        &[("R4", 6, 1)],
    );
    expect(
        "loop:\n    r = talk(\"x\")\n    until \"a\":\n        pass\n",
        &[("R2", 1, 1), ("R4", 3, 5)],
    );
}

#[test]
fn r6_while_is_rejected_with_a_pointer_to_loop() {
    let diags = validate("x = 0\nwhile x < 3:\n    x += 1\n");
    expect("x = 0\nwhile x < 3:\n    x += 1\n", &[("R6", 2, 1)]);
    assert!(diags[0].message.contains("loop:") && diags[0].message.contains("until"));
}

#[test]
fn r7_conversation_inside_def() {
    expect(
        "def f():\n    loop:\n        r = talk(\"x\")\n    until \"a\":\n        pass\n",
        &[("R7", 2, 5), ("R7", 4, 5)],
    );
    expect("def f():\n    return talk(\"x\")\n", &[("R7", 2, 12)]);
}

#[test]
fn r8_unterminated_string_reports_its_start_line() {
    expect("x = 1\nsay(\"hello)\ny = 2\n", &[("R8", 2, 5)]);
    expect("x = \"\"\"never\nclosed\n", &[("R8", 1, 5)]);
}

#[test]
fn r8_brackets() {
    // Unclosed: reported where it opens; mismatched: reported on the closer.
    expect("x = 1\ny = foo(1,\n  2\nz = 3\n", &[("R8", 2, 8)]);
    expect("y = [1, 2)\n", &[("R8", 1, 10)]);
    expect("y = 1)\n", &[("R8", 1, 6)]);
}

#[test]
fn r8_indentation() {
    expect("if x:\n    a = 1\n  b = 2\n", &[("R8", 3, 1)]);
    expect("x = 1\n    y = 2\n", &[("R8", 2, 5)]);
    expect("if x:\n        a = 1\n\tb = 2\n", &[("R8", 3, 1)]);
    expect("if x:\ny = 1\n", &[("R8", 1, 1)]);
}

#[test]
fn r8_structure() {
    expect("break\n", &[("R8", 1, 1)]);
    expect("for x in y:\n    pass\ncontinue\n", &[("R8", 3, 1)]);
    expect("return 5\n", &[("R8", 1, 1)]);
    expect("if a:\n    pass\nelse if b:\n    pass\n", &[("R8", 3, 1)]);
    expect("f(a=1, 2)\n", &[("R8", 1, 8)]);
    expect("if x\n    pass\n", &[("R8", 1, 5)]);
    expect("f() = 3\n", &[("R8", 1, 1)]);
    expect(
        "d = {\"name\": \"Brian\", previous_jobs=[\"JOB 1\"]}\n",
        &[("R8", 1, 36)],
    );
    expect("x = {...} // Example default value\n", &[("R8", 1, 22)]);
    assert!(
        validate("x = {...} // Example default value\n")[0]
            .message
            .contains("use `#`")
    );
    expect("x = 007\n", &[("R8", 1, 5)]);
    expect("x = 1 $ 2\n", &[("R8", 1, 7)]);
    expect("s = f\"{}\"\n", &[("R8", 1, 7)]);
    expect("s = f\"a } b\"\n", &[("R8", 1, 9)]);
    expect("s = f\"Hi {name\"\nt = 1\n", &[("R8", 1, 10)]);
    expect("s = f\"{a +}\"\n", &[("R8", 1, 11)]);
    expect("s = \"\\N\"\n", &[("R8", 1, 6)]);
    expect("x = “quoted”\n", &[("R8", 1, 5), ("R8", 1, 12)]);
}

#[test]
fn r9_header_shapes() {
    expect("loop\n    r = talk(\"x\")\nuntil \"a\":\n    pass\n", &[("R9", 1, 1)]);
    expect("loop until \"done\":\n    r = talk(\"x\")\n", &[("R9", 1, 1)]);
    expect("loop until (done) {\n  talk(\"hi\"); // ask\n}\n", &[("R9", 1, 1)]);
    assert!(
        validate("loop until (done) {\n  talk(\"hi\"); // ask\n}\n")[0]
            .message
            .contains("pseudo-code")
    );
    expect("loop:\n    r = talk(\"x\")\nuntil:\n    pass\n", &[("R9", 3, 1)]);
    expect("loop:\n    r = talk(\"x\")\nuntil \"a\"\n    pass\n", &[("R9", 3, 10)]);
}

#[test]
fn slug_collisions_warn() {
    let src = "loop:\n    r = talk(\"x\")\nuntil \"the user wants to book a table now\":\n    pass\nuntil \"The user wants to book a table later\":\n    pass\n";
    expect(src, &[("W-slug", 5, 7)]);
}

// ---- recovery, ordering, rendering ------------------------------------------

#[test]
fn several_errors_are_reported_in_order() {
    let src = "x = (1,\nwhile True:\n    pass\n";
    assert_eq!(found(src), vec![("R8".to_string(), 1, 5)]);
    let src = "while a:\n    break\nsay(\"x)\nloop:\n    r = talk(\"x\")\nreturn\n";
    expect(src, &[("R6", 1, 1), ("R8", 3, 5), ("R2", 4, 1), ("R8", 6, 1)]);
}

#[test]
fn render_and_model_description() {
    let src = "loop:\n    booking = talk(\"x\", True)\n    say(\"thanks\")\nuntil \"a\":\n    return\n";
    let d: Diagnostic = validate(src).remove(0);
    let text = render("flow.based", src, &d);
    let expected = format!(
        "flow.based:3:5: error[R1]: {}\n  |\n3 |     say(\"thanks\")\n  |     ^^^^^^^^^^^^^\n",
        d.message
    );
    assert_eq!(text, expected);
    assert_eq!((d.end_line, d.end_column), (3, 18));
    let line = describe_for_model(src, &d);
    assert!(line.starts_with("line 3, column 5: "));
    assert!(line.ends_with("`    say(\"thanks\")`)"));
    assert!(!line.contains('\n'));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("x = {}1{}\n", "(".repeat(5000), ")".repeat(5000));
    let diags = validate(&deep);
    assert!(has_errors(&diags));
    assert!(diags[0].message.contains("nesting is too deep"));
    let blocks: String = (0..300).map(|i| format!("{}if x:\n", "    ".repeat(i))).collect();
    assert!(has_errors(&validate(&blocks)));
    assert!(has_errors(&validate(&"-".repeat(10_000))));
    // Long operator and trailer chains build deep trees too: capped, not crashing.
    assert!(has_errors(&validate(&format!("x = {}a\n", "a + ".repeat(50_000)))));
    assert!(has_errors(&validate(&format!("x = a{}\n", ".b()[0]".repeat(20_000)))));
    assert_clean(&format!("x = {}a\n", "a + ".repeat(500)));
    let elifs: String = (0..5_000).map(|i| format!("elif x == {i}:\n    pass\n")).collect();
    assert_clean(&format!("if x:\n    pass\n{elifs}else:\n    pass\n"));
    assert!(has_errors(&validate(&"[".repeat(10_000))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics_on_arbitrary_text(src in "\\PC{0,200}") {
        let diags = validate(&src);
        for d in &diags {
            prop_assert!(d.line >= 1 && d.column >= 1);
            let _ = render("p.based", &src, d);
        }
    }

    #[test]
    fn never_panics_on_python_like_soup(parts in proptest::collection::vec(
        prop_oneof![
            Just("loop:"), Just("until \"x\":"), Just("talk("), Just(")"), Just("("), Just("["), Just("]"),
            Just("{"), Just("}"), Just("\n"), Just("\r\n"), Just("    "), Just("\t"), Just("f\"{"), Just("\""),
            Just("'''"), Just("x"), Just("="), Just(":"), Just(","), Just("if"), Just("else"), Just("def"),
            Just("return"), Just("\\"), Just("#"), Just("1.5e"), Just("lambda"), Just("*"), Just("**"),
        ],
        0..60,
    )) {
        let src: String = parts.concat();
        let diags = validate(&src);
        let mut sorted = diags.clone();
        sorted.sort_by_key(|d| (d.line, d.column));
        prop_assert_eq!(diags, sorted);
    }
}
