//! Operator subcommands: `state [--rm] [TIME]`, `locks`, `config`.

use std::io::Write;

use time::OffsetDateTime;

use super::context::Context;
use crate::error::{Error, Result};
use crate::state::{parse_cutoff, read_holder, StateError};

/// `deimos state [--rm] [TIME]`: lists (or removes) the state directories of containers that
/// exited and were started before TIME (default: now). Removal is safe from cron: it never
/// touches a live container, and a concurrent cleanup makes it fail cleanly.
pub fn state_command(
    ctx: &Context,
    remove: bool,
    before: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let cutoff = match before {
        Some(text) => parse_cutoff(text)?,
        None => OffsetDateTime::now_utc(),
    };
    let print = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(Error::io("write to stdout"))
    };
    if !remove {
        for entry in ctx.state.exited_before(cutoff, &ctx.scope)? {
            let path = entry.index_link.as_ref().unwrap_or(&entry.dir);
            print(out, path.display().to_string())?;
        }
        return Ok(());
    }
    let report = match ctx.state.remove_exited_before(cutoff, &ctx.scope) {
        Ok(report) => report,
        Err(StateError::CleanupBusy { .. }) => {
            let holder = read_holder(&ctx.state.cleanup_lock_path()).map(|h| h.pid);
            return Err(Error::CleanupBusy { holder });
        }
        Err(other) => return Err(other.into()),
    };
    for removed in &report.removed {
        print(out, format!("removed {}", removed.dir.display()))?;
    }
    for failure in &report.failures {
        eprintln!(
            "deimos state --rm: {}: {}",
            failure.path.display(),
            failure.error
        );
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(Error::CleanupFailed(report.failures.len()))
    }
}

/// `deimos locks`: one line per held lock: inode, pid, READ/WRITE, path.
pub fn print_locks(ctx: &Context, out: &mut dyn Write) -> Result<()> {
    for entry in ctx.state.lock_listing()? {
        writeln!(out, "{entry}").map_err(Error::io("write to stdout"))?;
    }
    Ok(())
}

/// `deimos config`: the effective configuration as INI, with where it came from.
pub fn print_config(ctx: &Context, out: &mut dyn Write) -> Result<()> {
    let source = match &ctx.config_source {
        Some(path) => format!("; loaded from {}", path.display()),
        None => "; no configuration file found: built-in defaults".to_owned(),
    };
    write!(out, "{source}\n{}", ctx.config.render()).map_err(Error::io("write to stdout"))
}
