//! Child processes that behave well next to an embedded broker.
//!
//! librdkafka's mock cluster lives inside the parent process. Two things go wrong with children spawned
//! while it runs (PostgreSQL, a service, `initdb`, a `healthcheck` subcommand):
//! - its accepted connections are not close-on-exec, so a child keeps a copy of each and a connection the
//!   broker "closed" stays open (clients then wait on it forever): [`isolate`] and [`command`] mark every
//!   inherited descriptor close-on-exec;
//! - between fork and exec a child holds a copy of the broker's listening socket; a broker taken down in
//!   that window cannot re-bind its port and librdkafka aborts the whole process. Spawns therefore go
//!   through [`spawning`] (or [`SafeSpawn`]), which the embedded broker's down/up waits for.

use std::os::unix::process::CommandExt as _;
use std::sync::RwLock;

/// Held shared while a child is between fork and exec, exclusively while the embedded broker goes down/up.
static SPAWN_WINDOW: RwLock<()> = RwLock::new(());

/// Run `spawn` (anything that forks and execs, `std` or `tokio`) while no broker fault is being applied.
pub fn spawning<T>(spawn: impl FnOnce() -> T) -> T {
    let _shared = SPAWN_WINDOW
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    spawn()
}

/// Run `fault` while no child of this process is between fork and exec.
pub(crate) fn exclusive<T>(fault: impl FnOnce() -> T) -> T {
    let _exclusive = SPAWN_WINDOW
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fault()
}

/// `spawn`/`output`/`status` of a `std` command, through [`spawning`].
pub trait SafeSpawn {
    /// `spawn()` while no broker fault is being applied.
    fn safe_spawn(&mut self) -> std::io::Result<std::process::Child>;
    /// Like `output()` (stdin from /dev/null, stdout and stderr captured).
    fn safe_output(&mut self) -> std::io::Result<std::process::Output>;
    /// Like `status()`.
    fn safe_status(&mut self) -> std::io::Result<std::process::ExitStatus>;
}

impl SafeSpawn for std::process::Command {
    fn safe_spawn(&mut self) -> std::io::Result<std::process::Child> {
        spawning(|| self.spawn())
    }

    fn safe_output(&mut self) -> std::io::Result<std::process::Output> {
        use std::process::Stdio;
        self.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.safe_spawn()?.wait_with_output()
    }

    fn safe_status(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.safe_spawn()?.wait()
    }
}

/// Prepare `cmd` so its child gets SIGTERM when the spawning thread ends (parent-death signal: spawn from a
/// thread that lives as long as the process) and inherits no descriptor but stdin, stdout and stderr.
#[allow(unsafe_code)]
pub fn isolate(cmd: &mut std::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes two async-signal-safe system
    // calls on plain integers; it touches no memory shared with the parent. It runs after the uid change, so
    // the parent-death setting survives the exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            close_inherited_descriptors()
        });
    }
}

/// Prepare `cmd`, for a short-lived child waited on in place, to inherit no descriptor but stdin, stdout and
/// stderr (no parent-death signal: it may be spawned from a short-lived thread).
#[allow(unsafe_code)]
pub fn no_inherited_descriptors(cmd: &mut std::process::Command) {
    // SAFETY: as in `isolate`: one async-signal-safe system call in the forked child.
    unsafe {
        cmd.pre_exec(close_inherited_descriptors);
    }
}

/// close_range(3, ~0, CLOSE_RANGE_CLOEXEC): every other descriptor closes at exec. Marking instead of closing
/// keeps std's own exec-error pipe working. Linux >= 5.11.
#[allow(unsafe_code)]
fn close_inherited_descriptors() -> std::io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: a system call on plain integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A command for a short-lived child of a test process that may also run the embedded broker (see
/// [`no_inherited_descriptors`]); spawn it with [`SafeSpawn`].
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    no_inherited_descriptors(&mut cmd);
    cmd
}
