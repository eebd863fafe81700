//! Resource usage and the machine's shape: getrusage, the CPUs a process may run on, the page
//! size. Used by the test apps that prove the cgroup limits (memhog, cpuburn).

use super::cvt;
use std::io;
use std::time::Duration;

/// CPU time this process has used so far, all threads together: (user, system).
pub fn self_cpu_time() -> io::Result<(Duration, Duration)> {
    // SAFETY: rusage is plain data the kernel fills.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) })?;
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((tv(ru.ru_utime), tv(ru.ru_stime)))
}

/// How many CPUs this thread may run on (sched_getaffinity), which is what a program should
/// size its parallelism by: a cpuset or `taskset` narrows it, a CPU quota does not.
pub fn cpus_allowed() -> io::Result<usize> {
    // SAFETY: cpu_set_t is plain data; the size passed is its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    // SAFETY: the set was filled by the kernel.
    Ok(unsafe { libc::CPU_COUNT(&set) } as usize)
}

/// The size of a memory page in bytes.
pub fn page_size() -> usize {
    // SAFETY: sysconf takes an integer; _SC_PAGESIZE cannot fail on Linux.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}
