//! `echo-server` and `echo-client`: the test apps that prove a container's network.
//!
//! The server greets every connection with one line naming the host and the address the
//! client reached (`hello from web (10.88.0.2:7000)`), then sends back every line it gets. The
//! client checks the echo, and can measure round-trip latency (`--count`) and throughput
//! (`--bench`).

use crate::cli::{self, Arg, Parser};
use crate::error::{Error, Result};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_PORT: u16 = 7000;

pub const SERVER_USAGE: &str = "\
usage: echo-server [--port PORT] [--bind ADDR]

Listen on TCP ADDR:PORT (default 0.0.0.0:7000). Each connection is greeted with one line,
`hello from HOSTNAME (LOCAL_ADDR)`, then every line received is sent back. Clients are
served concurrently; each connection's peer is logged on stdout. Runs until killed.";

pub const CLIENT_USAGE: &str = "\
usage: echo-client ADDR[:PORT] [options] [MESSAGE...]

Connect to an echo-server (default port 7000), print its greeting, send MESSAGE (the
words joined by spaces; default `hello`) and print the echo.

options:
  --count N        send the message N times, one at a time, and print the round-trip
                   latency (min, median, max)
  --bench SECONDS  stream messages for SECONDS while reading the echoes, and print the
                   throughput (MB/s, 1 MB = 10^6 bytes, and messages/s)
  --size BYTES     message size for --bench (default 1024, newline included)
  --timeout S      give up connecting or waiting for an answer after S seconds (default 5)
  -h, --help       show this help

exit status: 0 when every echo matched, 1 when one did not or the server could not be
reached, 125 for bad usage.";

/// Exit status of a client that got a wrong echo or no answer.
pub const EXIT_FAILED: i32 = 1;

// ---------------------------------------------------------------------------------------------
// Server

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    pub bind: IpAddr,
    pub port: u16,
}

impl ServerOptions {
    pub fn parse(args: Vec<String>) -> Result<ServerOptions> {
        let mut o = ServerOptions {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: DEFAULT_PORT,
        };
        let mut p = Parser::new(args);
        while let Some(arg) = p.next_arg()? {
            match arg {
                Arg::Opt(opt) if opt == "--port" || opt == "-p" => {
                    o.port = number(&opt, &p.value(&opt)?)?;
                }
                Arg::Opt(opt) if opt == "--bind" || opt == "-b" => {
                    let v = p.value(&opt)?;
                    o.bind = v
                        .parse()
                        .map_err(|_| Error::msg(format!("{opt} {v}"), "not an IP address"))?;
                }
                Arg::Opt(opt) => return Err(cli::unknown(&opt)),
                Arg::Pos(v) => return Err(Error::msg(format!("argument {v}"), "unexpected")),
                Arg::DashDash => {}
            }
        }
        Ok(o)
    }
}

/// A log sink for the server's connection lines.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Bind and serve forever; `log` gets the listening line and one line per connection.
pub fn run_server(o: &ServerOptions, log: Log) -> Result<()> {
    let addr = SocketAddr::new(o.bind, o.port);
    let listener =
        TcpListener::bind(addr).map_err(|e| Error::io(format!("listen on {addr}"), e))?;
    log(&format!("echo-server: listening on {addr}"));
    let host = crate::sys::process::gethostname().unwrap_or_else(|_| "unknown".into());
    serve(listener, &host, log)
}

/// Accept connections on `listener`, one thread each.
pub fn serve(listener: TcpListener, hostname: &str, log: Log) -> Result<()> {
    let hostname: Arc<str> = Arc::from(hostname);
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            // A connection reset before we took it, or a transient shortage: keep serving.
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(Error::io("accept a connection", e)),
        };
        log(&format!("connection from {peer}"));
        let (hostname, log) = (hostname.clone(), log.clone());
        std::thread::spawn(move || {
            if let Err(e) = echo(&stream, &hostname) {
                log(&format!("{peer}: {e}"));
            }
        });
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EINTR | libc::EMFILE | libc::ENFILE | libc::ENOBUFS)
    )
}

/// Greet, then send back every line. Replies are flushed whenever no more input is waiting,
/// so one line at a time is answered at once and a stream of lines in large writes.
fn echo(stream: &TcpStream, hostname: &str) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    writeln!(out, "hello from {hostname} ({local})")?;
    out.flush()?;
    let mut input = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        out.write_all(&line)?;
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
    out.flush()
}

// ---------------------------------------------------------------------------------------------
// Client

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Send the message once and print the echo.
    Once,
    /// Send it N times, one round trip at a time.
    Count(usize),
    /// Stream messages for this long.
    Bench(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    pub target: String,
    pub message: String,
    pub mode: Mode,
    pub size: usize,
    pub timeout: Duration,
}

impl ClientOptions {
    pub fn parse(args: Vec<String>) -> Result<ClientOptions> {
        let mut target = None;
        let mut words: Vec<String> = Vec::new();
        let mut mode = Mode::Once;
        let mut size = 1024usize;
        let mut timeout = Duration::from_secs(5);
        let mut p = Parser::new(args);
        while let Some(arg) = p.next_arg()? {
            match arg {
                Arg::Opt(opt) => match opt.as_str() {
                    "--count" | "-c" => mode = Mode::Count(number(&opt, &p.value(&opt)?)?),
                    "--bench" => mode = Mode::Bench(seconds(&opt, &p.value(&opt)?)?),
                    "--size" => size = number(&opt, &p.value(&opt)?)?,
                    "--timeout" => timeout = seconds(&opt, &p.value(&opt)?)?,
                    _ => return Err(cli::unknown(&opt)),
                },
                Arg::Pos(v) if target.is_none() => target = Some(v),
                Arg::Pos(v) => words.push(v),
                Arg::DashDash => words.extend(p.rest()),
            }
        }
        let target = target.ok_or_else(|| Error::msg("missing ADDR", "see --help"))?;
        let message = if words.is_empty() {
            "hello".to_string()
        } else {
            words.join(" ")
        };
        if message.contains('\n') {
            return Err(Error::msg("message", "must be one line"));
        }
        if matches!(mode, Mode::Count(0)) {
            return Err(Error::msg("--count 0", "must be at least 1"));
        }
        if size < 2 {
            return Err(Error::msg(format!("--size {size}"), "must be at least 2"));
        }
        Ok(ClientOptions {
            target,
            message,
            mode,
            size,
            timeout,
        })
    }
}

fn number<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::msg(format!("{opt} {v}"), "not a number"))
}

fn seconds(opt: &str, v: &str) -> Result<Duration> {
    let s: f64 = number(opt, v)?;
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::msg(format!("{opt} {v}"), "not a positive number of seconds"))
}

/// `ADDR`, `ADDR:PORT`, `[V6]:PORT` or `HOST[:PORT]` to a socket address.
pub fn resolve(target: &str) -> Result<SocketAddr> {
    if let Ok(sa) = target.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = match target.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), number::<u16>("port", port)?),
        None => (target.to_string(), DEFAULT_PORT),
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("resolve {target}"), e))?
        .next()
        .ok_or_else(|| Error::msg(format!("resolve {target}"), "no address"))
}

/// Run the client, printing to `out`. `Ok(true)` when every echo matched.
pub fn run_client(o: &ClientOptions, out: &mut dyn Write) -> Result<bool> {
    let addr = resolve(&o.target)?;
    let stream = TcpStream::connect_timeout(&addr, o.timeout).map_err(|e| {
        let e = if e.kind() == io::ErrorKind::TimedOut {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", o.timeout),
            )
        } else {
            e
        };
        Error::io(format!("connect to {addr}"), e)
    })?;
    let setup = |e| Error::io(format!("set up the connection to {addr}"), e);
    stream.set_nodelay(true).map_err(setup)?;
    stream.set_read_timeout(Some(o.timeout)).map_err(setup)?;
    stream.set_write_timeout(Some(o.timeout)).map_err(setup)?;
    let mut input = BufReader::with_capacity(64 * 1024, &stream);
    let greeting = read_line(&mut input, addr, "its greeting")?;
    let print = |out: &mut dyn Write, s: String| {
        writeln!(out, "{s}").map_err(|e| Error::io("write the output", e))
    };
    print(out, greeting)?;
    match o.mode {
        Mode::Once => {
            let echo = round_trip(&stream, &mut input, addr, &o.message)?;
            let ok = echo == o.message;
            print(out, echo)?;
            close(&stream, &mut input);
            Ok(ok)
        }
        Mode::Count(n) => {
            let mut rtts = Vec::with_capacity(n);
            let mut ok = true;
            for _ in 0..n {
                let start = Instant::now();
                let echo = round_trip(&stream, &mut input, addr, &o.message)?;
                rtts.push(start.elapsed());
                ok &= echo == o.message;
            }
            print(out, latency_report(&mut rtts))?;
            close(&stream, &mut input);
            Ok(ok)
        }
        Mode::Bench(length) => {
            let (report, ok) = bench(&stream, input, addr, o.size, length)?;
            print(out, report)?;
            Ok(ok)
        }
    }
}

/// Close gracefully: say we are done, then wait for the server to close its side. The
/// connection is then fully closed before this process exits; one still closing would hold
/// the network namespace it lives in (a container's) after its last process is gone.
fn close(stream: &TcpStream, input: &mut impl Read) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
}

fn read_line(input: &mut impl BufRead, addr: SocketAddr, what: &str) -> Result<String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Err(Error::msg(
            format!("read {what} from {addr}"),
            "the server closed the connection",
        )),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(Error::msg(format!("read {what} from {addr}"), "timed out"))
        }
        Err(e) => Err(Error::io(format!("read {what} from {addr}"), e)),
    }
}

fn round_trip(
    mut stream: &TcpStream,
    input: &mut impl BufRead,
    addr: SocketAddr,
    message: &str,
) -> Result<String> {
    stream
        .write_all(format!("{message}\n").as_bytes())
        .map_err(|e| Error::io(format!("send to {addr}"), e))?;
    read_line(input, addr, "the echo")
}

/// `N round trips: min A ms, median B ms, max C ms`.
pub fn latency_report(rtts: &mut [Duration]) -> String {
    rtts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = rtts.len();
    let median = match n {
        0 => Duration::ZERO,
        _ if n % 2 == 1 => rtts[n / 2],
        _ => (rtts[n / 2 - 1] + rtts[n / 2]) / 2,
    };
    format!(
        "{n} round trips: min {:.3} ms, median {:.3} ms, max {:.3} ms",
        ms(rtts.first().copied().unwrap_or_default()),
        ms(median),
        ms(rtts.last().copied().unwrap_or_default())
    )
}

/// Stream `size`-byte messages for `length` from a second thread while this one counts the
/// echoes (both directions at once, or the server would block writing to a client that is
/// not reading). Then half-close and read the rest; every byte sent must come back.
fn bench(
    stream: &TcpStream,
    mut input: BufReader<&TcpStream>,
    addr: SocketAddr,
    size: usize,
    length: Duration,
) -> Result<(String, bool)> {
    let mut msg = vec![b'x'; size];
    msg[size - 1] = b'\n';
    let writer = stream
        .try_clone()
        .map_err(|e| Error::io(format!("clone the connection to {addr}"), e))?;
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> io::Result<u64> {
        let mut w = BufWriter::with_capacity(64 * 1024, &writer);
        let mut sent = 0u64;
        while start.elapsed() < length {
            for _ in 0..16 {
                w.write_all(&msg)?;
                sent += 1;
            }
        }
        w.flush()?;
        drop(w);
        writer.shutdown(Shutdown::Write)?;
        Ok(sent)
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    let mut newlines = 0u64;
    let mut good = true;
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes += n as u64;
                for &b in &buf[..n] {
                    match b {
                        b'\n' => newlines += 1,
                        b'x' => {}
                        _ => good = false,
                    }
                }
            }
            Err(e) => {
                return Err(Error::io(format!("read the echoes from {addr}"), e));
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let sent = match sender.join() {
        Ok(r) => r.map_err(|e| Error::io(format!("send to {addr}"), e))?,
        Err(_) => return Err(Error::msg("bench", "the sending thread panicked")),
    };
    let ok = good && newlines == sent && bytes == sent * size as u64;
    let report = format!(
        "bench: {newlines} messages of {size} bytes echoed in {elapsed:.2} s: {:.1} MB/s, {:.0} messages/s",
        bytes as f64 / elapsed / 1e6,
        newlines as f64 / elapsed
    );
    Ok((report, ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A server on an ephemeral loopback port, its log lines collected.
    fn server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let log: Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
        std::thread::spawn(move || serve(listener, "testhost", log));
        (addr, lines)
    }

    fn client(target: String, extra: &[&str]) -> (bool, String) {
        let mut a = vec![target];
        a.extend(extra.iter().map(|s| s.to_string()));
        let o = ClientOptions::parse(a).unwrap();
        let mut out = Vec::new();
        let ok = run_client(&o, &mut out).unwrap();
        (ok, String::from_utf8(out).unwrap())
    }

    #[test]
    fn greeting_names_the_host_and_the_echo_matches() {
        let (addr, log) = server();
        let (ok, out) = client(addr.to_string(), &["hello", "world"]);
        assert!(ok);
        assert_eq!(out, format!("hello from testhost ({addr})\nhello world\n"));
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert!(log[0].starts_with("connection from 127.0.0.1:"), "{log:?}");
    }

    #[test]
    fn many_clients_are_served_at_once() {
        let (addr, _) = server();
        // Hold 10 connections open at the same time, each greeted before any is answered.
        let conns: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for (i, c) in conns.iter().enumerate() {
            let mut r = BufReader::new(c);
            let mut greeting = String::new();
            r.read_line(&mut greeting).unwrap();
            assert!(greeting.starts_with("hello from testhost"));
            (&*c).write_all(format!("line {i}\n").as_bytes()).unwrap();
            let mut echo = String::new();
            r.read_line(&mut echo).unwrap();
            assert_eq!(echo, format!("line {i}\n"));
        }
    }

    #[test]
    fn count_reports_latency_and_bench_throughput() {
        let (addr, _) = server();
        let (ok, out) = client(addr.to_string(), &["--count", "5", "ping"]);
        assert!(ok);
        let last = out.lines().last().unwrap();
        assert!(last.starts_with("5 round trips: min "), "{out}");
        let (ok, out) = client(addr.to_string(), &["--bench", "0.2", "--size", "100"]);
        assert!(ok, "{out}");
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("bench: ") && last.contains(" MB/s, "),
            "{out}"
        );
    }

    #[test]
    fn a_wrong_echo_is_a_failure() {
        // A "server" that greets and then answers something else.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"hello from liar (x)\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            s.write_all(b"something else\n").unwrap();
        });
        let (ok, out) = client(addr.to_string(), &["hi"]);
        assert!(!ok);
        assert_eq!(out, "hello from liar (x)\nsomething else\n");
    }

    #[test]
    fn connection_errors_name_the_address() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = ClientOptions::parse(args(&[&format!("127.0.0.1:{port}")])).unwrap();
        let err = run_client(&o, &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("connect to 127.0.0.1:{port}: connection refused")
        );
    }

    #[test]
    fn options_parse() {
        let s = ServerOptions::parse(args(&["--port", "7100", "--bind=127.0.0.1"])).unwrap();
        assert_eq!(s.port, 7100);
        assert_eq!(s.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(ServerOptions::parse(vec![]).unwrap().port, 7000);
        assert!(ServerOptions::parse(args(&["--port", "70000"])).is_err());
        assert!(ServerOptions::parse(args(&["--bind", "nope"])).is_err());

        let c = ClientOptions::parse(args(&["10.88.0.2", "a", "b"])).unwrap();
        assert_eq!(c.message, "a b");
        assert_eq!(c.mode, Mode::Once);
        let c = ClientOptions::parse(args(&["10.88.0.2", "--count", "3"])).unwrap();
        assert_eq!((c.mode, c.message.as_str()), (Mode::Count(3), "hello"));
        let c = ClientOptions::parse(args(&["x", "--bench", "1.5"])).unwrap();
        assert_eq!(c.mode, Mode::Bench(Duration::from_millis(1500)));
        assert!(ClientOptions::parse(vec![]).is_err());
        assert!(ClientOptions::parse(args(&["x", "--count", "0"])).is_err());
        assert!(ClientOptions::parse(args(&["x", "--bench", "-1"])).is_err());

        assert_eq!(
            resolve("10.88.0.2").unwrap(),
            "10.88.0.2:7000".parse().unwrap()
        );
        assert_eq!(
            resolve("10.88.0.2:7001").unwrap(),
            "10.88.0.2:7001".parse().unwrap()
        );
        assert_eq!(resolve("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert_eq!(resolve("::1").unwrap(), "[::1]:7000".parse().unwrap());
    }

    #[test]
    fn latency_report_takes_the_middle() {
        let mut d: Vec<Duration> = [3, 1, 2, 10]
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        assert_eq!(
            latency_report(&mut d),
            "4 round trips: min 1.000 ms, median 2.500 ms, max 10.000 ms"
        );
    }
}
