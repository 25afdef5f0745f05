//! The command line: clap definitions mapped onto the library. No logic of
//! its own beyond choosing keys and printing.
//!
//! One file per verb group; `args` holds the clap definitions, `common`
//! what the repository commands share, `output` the JSON/text printing.

mod args;
mod bundle;
mod ceremony;
mod common;
mod key;
mod menu;
mod online;
mod output;
mod piv;
mod root;
mod snapshot;
mod targets;
mod token;
mod verify;

pub use args::Cli;
pub use verify::report;

use crate::conex::{Role, Snapshot, Timestamp};
use crate::error::{ArcaError, Result};
use args::{CeremonyRun, Command, Common, ReadCommon};
use ceremony::{builtin_ceremony, ceremony_cmd, ceremony_run};
use clap::Parser;
use common::{file_counter, parse_anchors};
use key::key_cmd;
use piv::piv_cmd;
use root::root_cmd;
use snapshot::{online_cmd, online_epoch, role_id, OnlineCreate};
use targets::{janitor_sign, targets_cmd};
use token::token_cmd;
use verify::{verify_cmd, verify_dir};

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    use std::io::IsTerminal as _;
    let cli = Cli::parse();
    let Some(cmd) = cli.cmd else {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            return menu::run();
        }
        eprintln!("arca: no command given and no terminal for the menu; see `arca --help`");
        return 2;
    };
    match dispatch(cmd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("arca: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Key { cmd } => key_cmd(cmd),
        Command::Root { cmd } => root_cmd(cmd),
        Command::Targets { cmd } => targets_cmd(cmd),
        Command::Snapshot { cmd } => online_cmd::<Snapshot>(cmd, Role::Snapshot),
        Command::Timestamp { cmd } => online_cmd::<Timestamp>(cmd, Role::Timestamp),
        Command::Verify(a) => verify_cmd(a),
        Command::Ceremony { cmd } => ceremony_cmd(cmd),
        Command::Token { cmd } => token_cmd(cmd),
        Command::Completions { shell } => {
            let mut c = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut c, "arca", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let c = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(c)
                .render(&mut std::io::stdout())
                .map_err(|e| ArcaError::io("stdout", e))
        }
        Command::Piv { cmd } => piv_cmd(cmd),
        Command::Bundle { cmd } => bundle::bundle_cmd(cmd),
        Command::Qr { cmd } => bundle::qr_cmd(cmd),
        Command::SignRequest { cmd } => bundle::sign_request_cmd(cmd),
        Command::Online { cmd } => online::online_cmd(cmd),
    }
}
