//! The interactive shell (rustyline): TAB completion and `?` help from the
//! command tree with live names from evpnr, history, version banner,
//! `quit`/`exit`/Ctrl-D.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, Highlighter, Hinter, KeyEvent, RepeatCount, Validator,
};
use tokio::runtime::Runtime;

use crate::commands::{self, Flow};
use crate::complete;
use crate::ctx::{CliError, Ctx, json_error};
use crate::parse::{self, Args};
use crate::tree::{Source, Tree};

/// Fetches live completion values by blocking on the runtime (rustyline's
/// callbacks are synchronous and run outside the runtime).
#[derive(Clone)]
struct Live {
    rt: tokio::runtime::Handle,
    ctx: Ctx,
}

impl Live {
    fn fetch(&self, src: Source, args: &Args) -> Vec<String> {
        self.rt.block_on(commands::live(&self.ctx, src, args))
    }
}

#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper {
    tree: Arc<Tree>,
    live: Live,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, c) =
            complete::complete(&self.tree, &line[..pos], &mut |s, a| self.live.fetch(s, a));
        let pairs = c
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((start, pairs))
    }
}

/// `?` prints help for the next word and keeps the typed line. Inside a
/// quote it inserts a literal `?`.
struct HelpKey {
    tree: Arc<Tree>,
    live: Live,
}

impl ConditionalEventHandler for HelpKey {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        ctx: &EventContext,
    ) -> Option<Cmd> {
        let before = &ctx.line()[..ctx.pos()];
        if parse::tokenize(before).is_err() {
            return None;
        }
        let text = complete::help(&self.tree, before, &mut |s, a| self.live.fetch(s, a));
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "?\r\n{}", text.replace('\n', "\r\n"));
        let _ = out.flush();
        Some(Cmd::Repaint)
    }
}

/// Where history is kept: `$EVPNC_HISTORY` (empty disables), else
/// `~/.evpnc_history`.
fn history_path() -> Option<PathBuf> {
    match std::env::var_os("EVPNC_HISTORY") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".evpnc_history")),
    }
}

/// Print an error the way the current mode wants it.
pub fn report(ctx: &Ctx, e: &CliError) {
    if ctx.json {
        println!("{}", json_error(&e.to_string()));
    } else {
        eprintln!("{} {e}", ctx.paint.bad("error:"));
    }
}

/// Ask before a command that takes a gateway down, naming each one. Only
/// `y` or `yes` goes ahead; a confirmed `evpn … disable` is sent with
/// `force` (evpnr refuses it on a bound primary otherwise).
fn confirmed(
    rt: &Runtime,
    ctx: &Ctx,
    rl: &mut Editor<ShellHelper, FileHistory>,
    cmd: &mut parse::Command,
) -> anyhow::Result<bool> {
    let risk = rt.block_on(crate::guard::at_risk_now(ctx, cmd));
    if risk.is_empty() {
        return Ok(true);
    }
    println!("{} this takes down:", ctx.paint.bad("warning:"));
    for r in &risk {
        println!("  {r}");
    }
    let answer = match rl.readline("Proceed? [y/N] ") {
        Ok(a) => a,
        Err(ReadlineError::Interrupted | ReadlineError::Eof) => String::new(),
        Err(e) => return Err(e.into()),
    };
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        println!("not done");
        return Ok(false);
    }
    if cmd.action == crate::tree::Action::EvpnDisable && !cmd.args.has("force") {
        cmd.args.0.push(("force", "force".into()));
    }
    Ok(true)
}

/// Run the shell until quit/exit/Ctrl-D. Returns the process exit status:
/// 0, or with a non-terminal stdin (a script piped in) the status of the
/// last failed command.
pub fn run(rt: &Runtime, ctx: Ctx, tree: Arc<Tree>) -> anyhow::Result<u8> {
    let interactive = std::io::stdin().is_terminal();
    let cfg = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(5000)?
        .build();
    let live = Live {
        rt: rt.handle().clone(),
        ctx: ctx.clone(),
    };
    let mut rl: Editor<ShellHelper, FileHistory> = Editor::with_config(cfg)?;
    rl.set_helper(Some(ShellHelper {
        tree: tree.clone(),
        live: live.clone(),
    }));
    rl.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(HelpKey {
            tree: tree.clone(),
            live,
        })),
    );
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    if interactive {
        println!(
            "{} — evpnr at {}",
            ctx.paint.value(&crate::version_line()),
            ctx.server
        );
        println!("Type ? for help, TAB to complete; quit, exit or Ctrl-D to leave.");
    }
    let mut status = 0u8;
    loop {
        let line = match rl.readline("evpn> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        if interactive {
            let _ = rl.add_history_entry(line.as_str());
            if let Some(h) = &hist {
                let _ = rl.save_history(h);
            }
        }
        let mut cmd = match parse::parse(&tree, &line) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                let e = CliError::from(e);
                status = e.exit_code();
                report(&ctx, &e);
                continue;
            }
        };
        if interactive && !confirmed(rt, &ctx, &mut rl, &mut cmd)? {
            continue;
        }
        match rt.block_on(commands::run(&ctx, &cmd)) {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => {}
            Err(e) => {
                status = e.exit_code();
                report(&ctx, &e);
            }
        }
    }
    Ok(if interactive { 0 } else { status })
}
