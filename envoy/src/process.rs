//! A local child process with its output in a log file: killed when dropped, frozen with SIGSTOP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args…` with stdout and stderr appended to `log`.
    pub fn spawn(program: &Path, args: &[String], log: PathBuf) -> anyhow::Result<Process> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        Ok(Process { child, log })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Exit status if the process has already died (a startup failure shows here).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGSTOP: the process hangs while its kernel sockets keep ACKing (the "hung process" fault).
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, sig: i32) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        if rc == 0 {
            Ok(())
        } else {
            anyhow::bail!("kill({}, {sig}): {}", self.pid(), std::io::Error::last_os_error())
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
