//! The terminal loop: one `select!` over crossterm's event stream, the app's bus and a
//! spinner tick; a redraw only when something changed.

use std::io::Write;
use std::time::Duration;

use crossterm::cursor;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event, EventStream,
    MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::layout::Rect;

use crate::app::Command;
use crate::clipboard;
use crate::driver::Driver;
use crate::ui;

/// Spinner frame time; also how often a busy app redraws.
const TICK: Duration = Duration::from_millis(100);
/// Lines one mouse-wheel notch scrolls.
const WHEEL_LINES: isize = 3;

/// Runs the UI until the user quits, restoring the terminal afterwards (and on panic).
pub async fn run(driver: Driver, first: Vec<Command>) -> anyhow::Result<()> {
    let mut terminal = ratatui::init();
    install_panic_hook();
    execute!(std::io::stdout(), EnableBracketedPaste, EnableMouseCapture)?;
    let outcome = event_loop(&mut terminal, driver, first).await;
    restore();
    outcome
}

/// A panic on the UI thread restores the terminal (ratatui's own hook leaves raw mode and the
/// alternate screen; this one also gives the mouse and paste modes back) before it is
/// printed. A panic in a background task (the embedded server, a highlighter) is contained by
/// tokio and the UI goes on, so it is logged instead of printed over the screen.
fn install_panic_hook() {
    let ratatui_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            let _ = execute!(std::io::stdout(), DisableMouseCapture, DisableBracketedPaste);
            ratatui_hook(info);
        } else {
            tracing::error!(panic = %info, "a background task panicked");
        }
    }));
}

fn restore() {
    let _ = execute!(std::io::stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
}

async fn event_loop(terminal: &mut DefaultTerminal, mut driver: Driver, first: Vec<Command>) -> anyhow::Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    driver.execute(first);
    let mut dirty = true;
    while !driver.app.should_quit {
        if dirty {
            terminal.draw(|frame| ui::render(&driver.app, frame))?;
            copy_to_clipboard(&mut driver)?;
            dirty = false;
        }
        tokio::select! {
            event = input.next() => match event {
                Some(Ok(event)) => dirty = terminal_event(&mut driver, event, terminal.size()?.into()),
                Some(Err(error)) => return Err(error.into()),
                None => break,
            },
            Some(event) = driver.next_event() => {
                driver.event(event);
                dirty = true;
            }
            _ = tick.tick() => {
                if driver.app.is_busy() {
                    driver.app.tick();
                    dirty = true;
                }
            }
        }
        if let Some(request) = driver.take_pending_edit() {
            // The editor owns the terminal meanwhile: our input reader stops (else it would
            // steal the editor's keys), raw mode and the alternate screen are left.
            drop(input);
            suspend()?;
            driver.run_edit(request).await;
            resume(terminal)?;
            input = EventStream::new();
            dirty = true;
        }
    }
    Ok(())
}

/// Gives the terminal to another program: the normal screen, cooked mode, no mouse reports.
fn suspend() -> std::io::Result<()> {
    execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    )?;
    disable_raw_mode()
}

/// Takes the terminal back after [`suspend`]; the next draw repaints everything.
fn resume(terminal: &mut DefaultTerminal) -> std::io::Result<()> {
    enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        Clear(ClearType::All),
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    // Not `terminal.clear()`: it asks the terminal where the cursor is, and that answer can
    // be lost while the input reader is restarting. A blank frame makes ratatui's idea of the
    // screen match the cleared one, so the next draw writes every cell the UI needs.
    terminal.draw(|frame| frame.render_widget(ratatui::widgets::Clear, frame.area()))?;
    Ok(())
}

/// Applies one terminal event; true when the screen needs a redraw.
fn terminal_event(driver: &mut Driver, event: Event, screen: Rect) -> bool {
    match event {
        Event::Key(key) => driver.key(key),
        Event::Paste(text) => driver.app.paste(&text),
        Event::Mouse(mouse) => {
            let lines = match mouse.kind {
                MouseEventKind::ScrollUp => -WHEEL_LINES,
                MouseEventKind::ScrollDown => WHEEL_LINES,
                _ => return false,
            };
            let pane = ui::pane_at(&driver.app, screen, mouse.column, mouse.row);
            driver.app.scroll(pane, lines);
        }
        Event::Resize(..) => {}
        _ => return false,
    }
    true
}

/// Copies what the app asked to copy, through the terminal (OSC 52).
fn copy_to_clipboard(driver: &mut Driver) -> std::io::Result<()> {
    let mut stdout = std::io::stdout();
    for text in driver.clipboard.drain(..) {
        write!(stdout, "{}", clipboard::osc52(&text))?;
    }
    stdout.flush()
}
