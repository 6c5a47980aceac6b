//! Writes that outrun sealing wait for the seal in flight (`seal::Backlog`) — without holding
//! up the topic's reads. A write past the backlog limit, and every mutating command after it,
//! is *parked* in arrival order; reads (`Read`, `State`, `Fetch`, `Image`) are answered
//! meanwhile; when the seal lands, parked commands run in order for as long as the backlog
//! allows.
//!
//! Invariants: parked commands run in the order they arrived, and none of them runs before a
//! command that arrived earlier; a parked command is not acknowledged (its write has no seq
//! and no WAL frame yet), so a read that skips it sees a state it may legitimately see. Past
//! `PARKED_MAX` the actor stops taking commands and waits for the seal, as every write did
//! before parking existed, so memory stays bounded.

use super::actor::Actor;
use super::Command;
use std::ops::ControlFlow;

/// Commands held at most while writes wait for a seal; beyond that the actor waits itself.
pub(super) const PARKED_MAX: usize = 64;

impl Actor {
    /// Handle one command from the mailbox: park it, or run it (and what it unblocks).
    pub(super) async fn on_command(&mut self, cmd: Command) -> ControlFlow<()> {
        if !self.must_park(&cmd) {
            return self.run_command(cmd).await;
        }
        self.parked.push_back(cmd);
        if self.parked.len() < PARKED_MAX {
            return ControlFlow::Continue(());
        }
        self.wait_for_seal_backlog().await;
        self.drain_parked().await
    }

    /// Run parked commands in order while the backlog lets writes through.
    pub(super) async fn drain_parked(&mut self) -> ControlFlow<()> {
        while let Some(front) = self.parked.front() {
            if is_write(front) && self.backlog_exceeded() {
                break;
            }
            let Some(cmd) = self.parked.pop_front() else {
                break;
            };
            self.run_command(cmd).await?;
        }
        ControlFlow::Continue(())
    }

    fn must_park(&self, cmd: &Command) -> bool {
        let read_only = matches!(
            cmd,
            Command::Read { .. }
                | Command::State { .. }
                | Command::Fetch { .. }
                | Command::Image { .. }
        );
        if read_only {
            return false;
        }
        !self.parked.is_empty() || (is_write(cmd) && self.backlog_exceeded())
    }
}

fn is_write(cmd: &Command) -> bool {
    matches!(cmd, Command::Append { .. } | Command::Holes { .. })
}
