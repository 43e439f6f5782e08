//! The interactive shell of `fstore sql`: statements end with `;`, history is kept in
//! `~/.fstore_history`, `\q` (or Ctrl-D) quits. An error is printed and the shell goes on.

use std::io::Write;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::output::Format;
use crate::engine::Engine;
use crate::error::user_message;

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".fstore_history"))
}

/// Runs the shell until the user quits.
pub async fn run(engine: &Engine, format: Format) -> datafusion::error::Result<()> {
    let mut editor = DefaultEditor::new()
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "FStore {} on {} — end statements with ';', \\q to quit",
        env!("CARGO_PKG_VERSION"),
        engine.warehouse().url()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "fstore> "
        } else {
            "     -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
                    break;
                }
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                if !trimmed.ends_with(';') {
                    continue;
                }
                let _ = editor.add_history_entry(buffer.as_str());
                let mut stdout = std::io::stdout();
                if let Err(e) = super::run_script(engine, &buffer, format, &mut stdout).await {
                    eprintln!("error: {}", user_message(&e));
                }
                let _ = stdout.flush();
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
