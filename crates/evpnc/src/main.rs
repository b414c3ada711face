//! evpnc — the vpp-evpn operator CLI. It talks only to evpnr. See evpnc(1)
//! and docs/cli.md.
mod commands;
mod complete;
mod ctx;
mod failover;
mod guard;
mod help;
mod model;
mod parse;
mod render;
mod shell;
mod tree;
mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use evpn_api::v1::evpnr_client::EvpnrClient;
use tonic::transport::Endpoint;

use crate::commands::Flow;
use crate::ctx::{CliError, Ctx, json_error};
use crate::render::Paint;

/// evpnr's default gRPC address.
pub const DEFAULT_SERVER: &str = "127.0.0.1:9190";
/// Default deadline of each RPC: longer than evpnr's longest bound with its
/// default settings (a join's configure chain: three member calls of
/// member-timeout 5 s each plus move.max-wait 2 s = 17 s), so the CLI never
/// gives up on an operation the server is still finishing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `evpnc <version> (commit <commit>)`.
pub fn version_line() -> String {
    evpn_base::build::version_line("evpnc")
}

/// The global flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub server: Option<String>,
    pub json: bool,
    pub color: Option<bool>,
    pub timeout: Duration,
    pub version: bool,
    pub help: bool,
    /// Mutual TLS: certificate, key and CA (all or none).
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            server: None,
            json: false,
            color: None,
            timeout: DEFAULT_TIMEOUT,
            version: false,
            help: false,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        }
    }
}

fn boolean(name: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") | Some("1") | Some("yes") => Ok(true),
        Some("false") | Some("0") | Some("no") => Ok(false),
        Some(x) => Err(format!("flag -{name}: {x:?} is not a boolean")),
    }
}

/// Go-style flags before the command: `-json`, `--json`, `-server x`,
/// `-server=x`, `-color=false`. The first word that is not a flag (or
/// `--`) starts the command.
pub fn parse_flags(args: &[String]) -> Result<(Flags, Vec<String>), String> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            break;
        };
        if body.is_empty() {
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("flag -{name} needs a value ({what})"))
        };
        match name {
            "server" | "s" => f.server = Some(value("host:port")?),
            "timeout" => {
                let v = value("a duration, e.g. 5s")?;
                let d: evpn_model::HumanDuration =
                    v.parse().map_err(|e| format!("flag -timeout: {e}"))?;
                if d.0.is_zero() {
                    return Err("flag -timeout: must be more than 0".into());
                }
                f.timeout = d.0;
            }
            "json" => f.json = boolean(name, inline)?,
            "color" | "colour" => f.color = Some(boolean(name, inline)?),
            "version" | "v" => f.version = boolean(name, inline)?,
            "help" | "h" => f.help = true,
            "tls-cert" => f.tls_cert = Some(value("a PEM file")?.into()),
            "tls-key" => f.tls_key = Some(value("a PEM file")?.into()),
            "tls-ca" => f.tls_ca = Some(value("a PEM file")?.into()),
            _ => return Err(format!("unknown flag {a:?} (see evpnc -help)")),
        }
        i += 1;
    }
    Ok((f, args[i..].to_vec()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flags, words) = match parse_flags(&args) {
        Ok(x) => x,
        Err(e) => {
            if args.iter().any(|a| a == "-json" || a == "--json") {
                println!("{}", json_error(&e));
            } else {
                eprintln!("evpnc: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let color = !flags.json
        && flags.color.unwrap_or_else(|| {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        });
    let paint = Paint { color };
    if flags.version {
        println!("{}", version_line());
        return ExitCode::SUCCESS;
    }
    if flags.help {
        print!("{}", help::usage(paint));
        return ExitCode::SUCCESS;
    }
    let server = flags
        .server
        .clone()
        .or_else(|| std::env::var("EVPNC_SERVER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    match run(flags, server, paint, words) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("evpnc: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The TLS files from the flags, else `EVPNC_TLS_*`: all three or none.
fn tls_files(f: &Flags) -> Result<Option<evpn_tls::TlsFiles>, String> {
    let pick = |flag: &Option<std::path::PathBuf>, env: &str| {
        flag.clone().or_else(|| {
            std::env::var_os(env)
                .filter(|v| !v.is_empty())
                .map(Into::into)
        })
    };
    let (cert, key, ca) = (
        pick(&f.tls_cert, "EVPNC_TLS_CERT"),
        pick(&f.tls_key, "EVPNC_TLS_KEY"),
        pick(&f.tls_ca, "EVPNC_TLS_CA"),
    );
    match (cert, key, ca) {
        (Some(cert), Some(key), Some(ca)) => Ok(Some(evpn_tls::TlsFiles { cert, key, ca })),
        (None, None, None) => Ok(None),
        (c, k, a) => Err(format!(
            "-tls-cert, -tls-key and -tls-ca go together; missing: {}",
            [
                ("-tls-cert", c.is_none()),
                ("-tls-key", k.is_none()),
                ("-tls-ca", a.is_none())
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
        )),
    }
}

fn run(flags: Flags, server: String, paint: Paint, words: Vec<String>) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let url = if server.contains("://") {
        server.clone()
    } else {
        format!("http://{server}")
    };
    let tree = Arc::new(tree::build());
    let endpoint = match Endpoint::from_shared(url) {
        Ok(e) => e.connect_timeout(flags.timeout).tcp_nodelay(true),
        Err(e) => {
            let e = CliError::Parse(parse::ParseError::Invalid {
                field: "server".into(),
                reason: format!("{server:?}: {e}"),
            });
            let code = e.exit_code();
            if flags.json {
                println!("{}", json_error(&e.to_string()));
            } else {
                eprintln!("evpnc: {e}");
            }
            return Ok(code);
        }
    };
    let tls = match tls_files(&flags) {
        Ok(t) => t,
        Err(e) => {
            if flags.json {
                println!("{}", json_error(&e));
            } else {
                eprintln!("evpnc: {e}");
            }
            return Ok(2);
        }
    };
    let tls = match tls.map(evpn_tls::ClientTls::load).transpose() {
        Ok(t) => t,
        Err(e) => {
            if flags.json {
                println!("{}", json_error(&e.to_string()));
            } else {
                eprintln!("evpnc: TLS: {e}");
            }
            return Ok(1);
        }
    };
    let channel = {
        let _g = rt.enter();
        match tls {
            Some(t) => {
                endpoint.connect_with_connector_lazy(t.connector(evpn_tls::Expect::AnyRegistry))
            }
            None => endpoint.connect_lazy(),
        }
    };
    let ctx = Ctx {
        client: EvpnrClient::new(channel),
        server,
        timeout: flags.timeout,
        json: flags.json,
        paint,
        tty: std::io::stdin().is_terminal(),
    };
    if words.is_empty() {
        return shell::run(&rt, ctx, tree);
    }
    // One-shot.
    let result = match parse::parse_words(&tree, &words) {
        Ok(Some(cmd)) => rt.block_on(commands::run(&ctx, &cmd)),
        Ok(None) => Ok(Flow::Continue),
        Err(e) => Err(CliError::from(e)),
    };
    match result {
        Ok(_) => Ok(0),
        Err(e) => {
            shell::report(&ctx, &e);
            Ok(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn go_style_flags() {
        let (f, w) = parse_flags(&s(&[
            "-json",
            "-server",
            "h:1",
            "--timeout=500ms",
            "-color=false",
            "show",
            "group",
            "-x",
        ]))
        .unwrap();
        assert!(f.json);
        assert_eq!(f.server.as_deref(), Some("h:1"));
        assert_eq!(f.timeout, Duration::from_millis(500));
        assert_eq!(f.color, Some(false));
        assert_eq!(w, s(&["show", "group", "-x"]));
        let (f, w) = parse_flags(&s(&["--server=a:2", "--", "-json"])).unwrap();
        assert_eq!(f.server.as_deref(), Some("a:2"));
        assert!(!f.json);
        assert_eq!(w, s(&["-json"]));
        let (f, _) = parse_flags(&s(&["-version"])).unwrap();
        assert!(f.version);
        assert!(parse_flags(&s(&["-bogus"])).is_err());
        assert!(parse_flags(&s(&["-server"])).is_err());
        assert!(parse_flags(&s(&["-timeout", "5"])).is_err());
        assert!(parse_flags(&s(&["-json=maybe"])).is_err());
        let (f, w) = parse_flags(&[]).unwrap();
        assert_eq!(f, Flags::default());
        assert!(w.is_empty());
    }
}
