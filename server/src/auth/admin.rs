//! `kafka-server user set-password EMAIL`: the operator's way to give an account a password
//! (protected mode refuses logins without one), or to reset a forgotten or hijacked one.

use std::io::BufRead;
use std::process::ExitCode;

use crate::auth::{normalize_email, passwords};
use crate::config::ServerArgs;

/// Reads the password (one line) from stdin and sets it for `email` in the database the
/// server options name. The account is created (with a default workspace) if there is none;
/// every login token of an existing one is revoked.
pub fn set_password_command(args: &ServerArgs, email: &str) -> ExitCode {
    match set_password(args, email, &mut std::io::stdin().lock()) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kafka-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn set_password(args: &ServerArgs, email: &str, input: &mut dyn BufRead) -> anyhow::Result<String> {
    let email = normalize_email(email).map_err(anyhow::Error::msg)?;
    let password = read_password(input)?;
    let settings = args.settings()?;
    let hash = passwords::hash_now(&password)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = runtime.block_on(crate::store::set_password_at(&settings.database_url, &email, &hash))?;
    Ok(if set.created {
        format!("Created the account {email} with this password.")
    } else {
        format!("Password set for {email}; {} login token(s) revoked.", set.revoked)
    })
}

/// One line; only its line ending is removed (spaces are part of the password).
fn read_password(input: &mut dyn BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        anyhow::bail!("no password on stdin (give it as one line)");
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    passwords::check_new(password)
        .map_err(|e| anyhow::anyhow!("{}", e.replace("Field password: ", "the password: ")))?;
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_one_line_of_at_least_eight_characters() {
        let read = |text: &str| read_password(&mut text.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(read(" spaced out \r\nignored\n").unwrap(), " spaced out ");
        assert_eq!(read("no newline at all").unwrap(), "no newline at all");
        assert!(read("short\n").unwrap_err().contains("at least 8"));
        assert!(read("").unwrap_err().contains("no password"));
    }
}
