//! What every subcommand needs: configuration, state root, scope, environment, Docker.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use mesos_proto::ecp::{self, ReadOptions};
use prost::Message;

use super::translate::{parse_os_release, ImageGuess, TranslateSettings};
use crate::config::{Config, LoadedConfig};
use crate::error::{Error, Result};
use crate::runtime::DockerRuntime;
use crate::state::{ContainerDir, ContainerId, Scope, StateError, StateRoot};

/// The environment variable naming the agent's work directory; it identifies the agent
/// instance, so containers are scoped by it (two agents on one host never see each other's).
pub(crate) const WORK_DIRECTORY_ENV: &str = "MESOS_WORK_DIRECTORY";

/// The shared inputs of a subcommand.
#[derive(Debug, Clone)]
pub struct Context {
    /// The effective configuration.
    pub config: Config,
    /// The file it was loaded from, if any.
    pub config_source: Option<PathBuf>,
    /// The state root.
    pub state: StateRoot,
    /// Which containers this invocation may see.
    pub scope: Scope,
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// The working directory (the sandbox, for calls about a launched container).
    pub cwd: PathBuf,
    /// This program, as the observer and the watcher must run it.
    pub deimos_exe: PathBuf,
}

impl Context {
    /// A context from the loaded configuration and this process' environment.
    pub fn from_process(loaded: LoadedConfig) -> Result<Context> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let cwd = std::env::current_dir().map_err(Error::io("read the working directory"))?;
        let deimos_exe = std::env::current_exe().map_err(Error::io("find this program's path"))?;
        Ok(Context::new(loaded, env, cwd, deimos_exe))
    }

    /// A context from explicit parts (tests, embedding).
    pub fn new(
        loaded: LoadedConfig,
        env: BTreeMap<String, String>,
        cwd: PathBuf,
        deimos_exe: PathBuf,
    ) -> Context {
        let scope = match env.get(WORK_DIRECTORY_ENV).filter(|w| !w.is_empty()) {
            Some(work_dir) => Scope::Owner(work_dir.clone()),
            None => Scope::All,
        };
        Context {
            state: StateRoot::new(loaded.config.state.root.clone()),
            config: loaded.config,
            config_source: loaded.source,
            scope,
            env,
            cwd,
            deimos_exe,
        }
    }

    /// The owner string recorded for new containers (the agent's work directory).
    pub fn owner(&self) -> Option<String> {
        match &self.scope {
            Scope::Owner(owner) => Some(owner.clone()),
            Scope::All => None,
        }
    }

    /// The settings of the launch translation.
    pub fn translate_settings(&self) -> TranslateSettings {
        let config = &self.config;
        TranslateSettings {
            default_image: config.image.default.clone(),
            ignore_image: config.image.ignore,
            default_options: config.options.default.clone(),
            append_options: config.options.append.clone(),
            ignore_options: config.options.ignore,
            sandbox_mount: config.containers.sandbox_mount.clone(),
            workdir: Some(config.containers.effective_workdir().to_owned()),
            cfs_quota: config.containers.cfs_quota,
            owner: self.owner(),
            image_guess: self.image_guess(),
            policy: config.policy.container_policy(),
        }
    }

    /// Deimos' image guess from `[docker.index]` and `/etc/os-release` (read only when the
    /// configuration names no default image, so the common path does no extra I/O).
    fn image_guess(&self) -> Option<ImageGuess> {
        if self.config.image.default.is_some() {
            return None;
        }
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .as_deref()
            .and_then(parse_os_release)?;
        let index = &self.config.index;
        Some(ImageGuess {
            index: index.index.clone(),
            account_libmesos: Some(index.account_libmesos.clone()),
            account: index.account.clone(),
            os,
        })
    }

    /// Connects to the configured Docker engine: the first `[docker] host` that answers.
    pub async fn runtime(&self) -> Result<DockerRuntime> {
        let hosts: Vec<String> = self
            .config
            .docker
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(DockerRuntime::connect_first(&hosts).await?)
    }

    /// The state directory of a container in scope; [`Error::UnknownContainer`] otherwise.
    pub fn container(&self, id: &str) -> Result<ContainerDir> {
        let id = ContainerId::new(id)?;
        let dir = match self.state.container(&id) {
            Ok(dir) => dir,
            Err(StateError::NotFound { .. }) => {
                return Err(Error::UnknownContainer(id.to_string()))
            }
            Err(other) => return Err(other.into()),
        };
        if !self.scope.matches(dir.owner()?.as_deref()) {
            return Err(Error::UnknownContainer(id.to_string()));
        }
        Ok(dir)
    }

    /// The environment variable, when set and non-empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Reads the one input record of a subcommand from `input` (exactly 4 + N bytes).
pub(super) fn read_request<M: Message + Default>(input: &mut dyn Read) -> Result<M> {
    Ok(ecp::read_message(input, ReadOptions::NON_EMPTY)?)
}

/// The container id of a request message, validated.
pub(super) fn request_id(id: &mesos_proto::mesos::ContainerId) -> Result<&str> {
    if id.value.is_empty() {
        return Err(Error::InvalidRequest(
            "the container_id field is empty".into(),
        ));
    }
    Ok(&id.value)
}
