//! The `mesos-harness` program (run by `scripts/cluster`): starts a
//! [`Cluster`] on this machine, prints the `master` value to give eremetic
//! and the agents' endpoints, and stops everything when told to.
//!
//! ```text
//! mesos-harness [--masters N] [--agents M] [--mode simulated|docker|executor|deimos]
//!               [--work-dir DIR] [--run-seconds S] [--agent-version V]
//! ```
//!
//! Agent modes are chosen by name through [`ModeName`], the one place that
//! builds them.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::containerizer_agent::{ContainerizerAgent, ContainerizerAgentConfig};
use super::docker_agent::{DockerAgent, DockerAgentConfig};
use super::executor_agent::{ExecutorAgent, ExecutorAgentConfig};
use super::sandbox::AgentBook;
use super::simulated::{SimulatedAgent, SimulatedAgentConfig};
use super::{AgentMode, Cluster, ClusterSetup};
use crate::error::HarnessError;
use crate::master::AgentSpec;

/// The usage text.
pub const USAGE: &str = "\
usage: mesos-harness [--masters N] [--agents M] [--mode MODE] [--work-dir DIR]
                     [--run-seconds S] [--agent-version V] [--deimos PATH]

Starts a private ZooKeeper, N masters elected through it (default 3) and M agents
(default 1) on 127.0.0.1, prints `master: zk://...` (the value of eremetic's `master`)
and each agent's endpoint, and runs until SIGINT or SIGTERM.

  --mode MODE          how agents run tasks: simulated (default; no containers),
                       docker (Mesos' Docker containerizer and docker executor, and
                       MESOS tasks with a Docker image, on this machine's Docker),
                       executor (custom executors such as deimos-executor started as
                       processes; the TaskInfo's ExecutorInfo names the program),
                       deimos (Mesos 1.0 agents running deimos as external
                       containerizer; this program is their mesos-executor)
  --deimos PATH        deimos: the containerizer program (default: `deimos` next to
                       this program)
  --work-dir DIR       the agents' work directories (default: a temporary directory,
                       removed at the end)
  --run-seconds S      simulated: how long a task runs (default 5; a task's
                       harness.run_seconds label overrides it)
  --agent-version V    the agents' Mesos version (default 1.12.0)
";

/// An agent mode, by its command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeName {
    /// [`SimulatedAgent`]: no containers, tasks on timers.
    Simulated,
    /// [`DockerAgent`]: Mesos' Docker containerizer through the `docker` CLI.
    Docker,
    /// [`ExecutorAgent`]: custom executors as real processes.
    Executor,
    /// [`ContainerizerAgent`]: a Mesos 1.0 agent running `deimos` as its external
    /// containerizer.
    Deimos,
}

impl ModeName {
    /// Every mode, with its name.
    pub const ALL: [(ModeName, &'static str); 4] = [
        (ModeName::Simulated, "simulated"),
        (ModeName::Docker, "docker"),
        (ModeName::Executor, "executor"),
        (ModeName::Deimos, "deimos"),
    ];

    /// Parses a mode name; the error names `--mode` and the choices.
    pub fn parse(name: &str) -> Result<ModeName, HarnessError> {
        Self::ALL
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(mode, _)| *mode)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                HarnessError::InvalidSetting {
                    setting: "--mode",
                    reason: format!("unknown mode '{name}' (known: {})", known.join(", ")),
                }
            })
    }

    /// The mode for an agent whose book is `book`, and the external containerizer agent to
    /// start (recover) once attached, for that mode.
    pub fn build(
        self,
        book: AgentBook,
        options: &ModeOptions,
    ) -> (Arc<dyn AgentMode>, Option<ContainerizerAgent>) {
        match self {
            ModeName::Simulated => {
                let mut config = SimulatedAgentConfig::new(book);
                config.run_time = options.run_time;
                (Arc::new(SimulatedAgent::new(config)), None)
            }
            ModeName::Docker => {
                let agent = DockerAgent::new(DockerAgentConfig::new(book));
                (Arc::new(agent), None)
            }
            ModeName::Executor => {
                let mut config = ExecutorAgentConfig::new(book);
                // The executors reach the same Docker engine as this program.
                if let Ok(docker_host) = std::env::var("DOCKER_HOST") {
                    let variable = ("DOCKER_HOST".to_owned(), docker_host);
                    config.executor_environment_variables.push(variable);
                }
                (Arc::new(ExecutorAgent::new(config)), None)
            }
            ModeName::Deimos => {
                let work_dir = book.work_dir();
                let config = ContainerizerAgentConfig::new(
                    &options.deimos,
                    book,
                    &options.launcher_dir,
                    work_dir,
                );
                let agent = ContainerizerAgent::new(config);
                (Arc::new(agent.clone()), Some(agent))
            }
        }
    }
}

/// Settings of the modes given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeOptions {
    /// Simulated: a task's run time.
    pub run_time: Duration,
    /// Deimos: the containerizer program.
    pub deimos: PathBuf,
    /// Deimos: the agents' `--launcher_dir`, holding `mesos-executor` (set by [`run`]).
    pub launcher_dir: PathBuf,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Run a cluster.
    Run(RunOptions),
}

/// A cluster to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// How many masters.
    pub masters: usize,
    /// How many agents.
    pub agents: usize,
    /// Their mode.
    pub mode: ModeName,
    /// The mode's settings.
    pub mode_options: ModeOptions,
    /// The agents' work directories' parent; `None`: a temporary one.
    pub work_dir: Option<PathBuf>,
    /// The agents' Mesos version.
    pub agent_version: String,
}

/// Parses the arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, HarnessError> {
    let mut options = RunOptions {
        masters: 3,
        agents: 1,
        mode: ModeName::Simulated,
        mode_options: ModeOptions {
            run_time: Duration::from_secs(5),
            deimos: sibling_program("deimos"),
            launcher_dir: PathBuf::new(),
        },
        work_dir: None,
        agent_version: super::agent_http::DEFAULT_AGENT_VERSION.to_owned(),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Ok(Command::Help);
        }
        let setting = flag_name(&name)?;
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| HarnessError::InvalidSetting {
                setting,
                reason: "needs a value".to_owned(),
            })?;
        match setting {
            "--masters" => options.masters = positive(setting, &value)?,
            "--agents" => options.agents = count(setting, &value)?,
            "--mode" => options.mode = ModeName::parse(&value)?,
            "--work-dir" => options.work_dir = Some(PathBuf::from(value)),
            "--run-seconds" => options.mode_options.run_time = seconds(setting, &value)?,
            "--deimos" => options.mode_options.deimos = PathBuf::from(value),
            _ => {
                super::agent_http::Version::parse(&value)
                    .map_err(|reason| HarnessError::InvalidSetting { setting, reason })?;
                options.agent_version = value;
            }
        }
    }
    Ok(Command::Run(options))
}

fn flag_name(name: &str) -> Result<&'static str, HarnessError> {
    const FLAGS: [&str; 7] = [
        "--deimos",
        "--masters",
        "--agents",
        "--mode",
        "--work-dir",
        "--run-seconds",
        "--agent-version",
    ];
    FLAGS
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| HarnessError::InvalidSetting {
            setting: "command line",
            reason: format!("unknown argument '{name}' (see --help)"),
        })
}

/// `name` in this program's directory (where cargo puts the workspace's programs).
fn sibling_program(name: &str) -> PathBuf {
    let here = std::env::current_exe().ok();
    let dir = here.as_deref().and_then(std::path::Path::parent);
    dir.map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
}

/// The agents' launcher directory: `mesos-executor` there is this program, which runs as the
/// command executor under that name.
fn launcher_dir(work_dir: &std::path::Path) -> Result<PathBuf, HarnessError> {
    let failed = |error: std::io::Error| HarnessError::InvalidSetting {
        setting: "--work-dir",
        reason: format!("cannot make the agents' launcher directory: {error}"),
    };
    let dir = work_dir.join("launcher");
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let link = dir.join("mesos-executor");
    let _ = std::fs::remove_file(&link);
    let program = std::env::current_exe().map_err(failed)?;
    std::os::unix::fs::symlink(program, &link).map_err(failed)?;
    Ok(dir)
}

fn count(setting: &'static str, value: &str) -> Result<usize, HarnessError> {
    value.parse().map_err(|_| HarnessError::InvalidSetting {
        setting,
        reason: format!("'{value}' is not a whole number"),
    })
}

fn positive(setting: &'static str, value: &str) -> Result<usize, HarnessError> {
    match count(setting, value)? {
        0 => Err(HarnessError::InvalidSetting {
            setting,
            reason: "must be at least 1".to_owned(),
        }),
        n => Ok(n),
    }
}

fn seconds(setting: &'static str, value: &str) -> Result<Duration, HarnessError> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| HarnessError::InvalidSetting {
            setting,
            reason: format!("'{value}' is not a non-negative number of seconds"),
        })
}

/// Runs the cluster until `shutdown` completes, writing what to connect to
/// on `out` (`master: <zk url>`, one `master <n>: <endpoint>` and one
/// `agent <id>: <url>` line each, then `ready`).
pub async fn run(
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
    out: &mut (dyn std::io::Write + Send),
) -> Result<(), HarnessError> {
    let (work_dir, temporary) = match &options.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("mesos-harness-{}", std::process::id())),
            true,
        ),
    };
    let mut options = options;
    if options.mode == ModeName::Deimos {
        if !options.mode_options.deimos.is_file() {
            return Err(HarnessError::InvalidSetting {
                setting: "--deimos",
                reason: format!(
                    "{} is not a file (build it: cargo build -p deimos)",
                    options.mode_options.deimos.display()
                ),
            });
        }
        options.mode_options.launcher_dir = launcher_dir(&work_dir)?;
    }
    let mut setup = ClusterSetup::new(&work_dir);
    setup.masters = options.masters;
    setup.agent_version = options.agent_version.clone();
    let cluster = Cluster::start(setup).await?;
    let result = announce(&cluster, &options, out).await;
    if result.is_ok() {
        shutdown.await;
    }
    cluster.stop().await;
    if temporary {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    result
}

async fn announce(
    cluster: &Cluster,
    options: &RunOptions,
    out: &mut (dyn std::io::Write + Send),
) -> Result<(), HarnessError> {
    // Agent ids as a master assigns them: `<id>-S<n>`.
    let prefix = crate::common::uuid::random_uuid_string();
    let mut lines = vec![format!("master: {}", cluster.master_url())];
    for (n, master) in cluster.masters().iter().enumerate() {
        lines.push(format!("master {}: http://{}", n + 1, master.endpoint()));
    }
    for n in 0..options.agents {
        let spec = AgentSpec::new(format!("{prefix}-S{n}"), "127.0.0.1");
        let mut containerizer = None;
        let view = cluster
            .add_agent(spec, |book| {
                let (mode, agent) = options.mode.build(book, &options.mode_options);
                containerizer = agent;
                mode
            })
            .await?;
        if let Some(agent) = containerizer {
            // The agent's start: `recover` and `containers` through deimos.
            agent
                .start()
                .await
                .map_err(|reason| HarnessError::InvalidSetting {
                    setting: "--deimos",
                    reason,
                })?;
        }
        lines.push(format!("agent {}: http://{}", view.agent_id, view.endpoint));
    }
    lines.push("ready".to_owned());
    let write = |out: &mut (dyn std::io::Write + Send)| -> std::io::Result<()> {
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
    };
    write(out).map_err(|error| HarnessError::InvalidSetting {
        setting: "standard output",
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_set_the_cluster_and_defaults_fill_the_rest() {
        let Command::Run(options) = parse_args(args(
            "--masters 2 --agents=5 --work-dir /w --run-seconds 0.5",
        ))
        .unwrap() else {
            panic!("run expected");
        };
        assert_eq!(options.masters, 2);
        assert_eq!(options.agents, 5);
        assert_eq!(options.mode, ModeName::Simulated);
        assert_eq!(options.work_dir, Some(PathBuf::from("/w")));
        assert_eq!(options.mode_options.run_time, Duration::from_millis(500));
        assert_eq!(options.agent_version, "1.12.0");
        assert_eq!(parse_args(args("--help")).unwrap(), Command::Help);
    }

    #[test]
    fn every_mode_is_chosen_by_its_name() {
        for (mode, name) in ModeName::ALL {
            let Command::Run(options) = parse_args(args(&format!("--mode {name}"))).unwrap() else {
                panic!("run expected");
            };
            assert_eq!(options.mode, mode);
        }
        let names: Vec<&str> = ModeName::ALL.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, ["simulated", "docker", "executor", "deimos"]);
    }

    #[test]
    fn the_deimos_mode_without_its_program_is_refused_before_anything_starts() {
        let Command::Run(options) =
            parse_args(args("--mode deimos --deimos /nonexistent/deimos")).unwrap()
        else {
            panic!("run expected");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut out = Vec::new();
        let error = runtime
            .block_on(run(options, std::future::pending(), &mut out))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--deimos") && error.contains("/nonexistent/deimos"),
            "{error}"
        );
        assert!(out.is_empty(), "nothing was announced");
    }

    #[test]
    fn an_unknown_mode_is_refused_naming_the_flag_and_the_modes() {
        let error = parse_args(args("--mode docker-ish"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--mode"), "{error}");
        assert!(
            error.contains("docker-ish") && error.contains("simulated"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_and_unknown_flags_name_what_is_wrong() {
        let cases = [
            ("--masters 0", "--masters"),
            ("--agents many", "--agents"),
            ("--run-seconds -1", "--run-seconds"),
            ("--agent-version x", "--agent-version"),
            ("--masters", "needs a value"),
            ("--nodes 3", "unknown argument '--nodes'"),
        ];
        for (line, expected) in cases {
            let error = parse_args(args(line)).unwrap_err().to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
