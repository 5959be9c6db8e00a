//! `[observer]`: the program run for command tasks, and the default chosen by the agent's
//! version.

use std::borrow::Cow;

use super::CommandTemplate;

/// Set in the launch environment by Mesos 1.0 agents only (`1`/`0`, from
/// `--http_command_executor`); its presence tells a 1.0 agent from an older one.
pub const HTTP_COMMAND_EXECUTOR_ENV: &str = "MESOS_HTTP_COMMAND_EXECUTOR";

/// Which `mesos-executor` command line the agent's command executor accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentGeneration {
    /// Before Mesos 1.0: `--override` exists (Deimos' observer command).
    BeforeMesos1,
    /// Mesos 1.0 and later: `--override` is gone (apache/mesos 0a0ed2d98) and unknown flags
    /// are refused; `--task_command` (there since 0.28.0) takes a JSON `CommandInfo`.
    Mesos1,
}

impl AgentGeneration {
    /// Tells the agent's generation from the launch environment: 1.0 agents set
    /// [`HTTP_COMMAND_EXECUTOR_ENV`] (to `1` or `0`), older ones never do.
    pub fn from_env<'a>(var: impl Fn(&str) -> Option<&'a str>) -> Self {
        match var(HTTP_COMMAND_EXECUTOR_ENV) {
            Some(_) => Self::Mesos1,
            None => Self::BeforeMesos1,
        }
    }

    /// The observer used when the configuration sets no `command`.
    pub fn default_observer(self) -> CommandTemplate {
        match self {
            Self::BeforeMesos1 => CommandTemplate::observer_override_form(),
            Self::Mesos1 => CommandTemplate::observer_task_command_form(),
        }
    }
}

/// `[observer]` section (ours): the program run for command tasks so that the agent sees a
/// task status (Deimos ran the Mesos command executor around `deimos observe`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverConfig {
    /// `enabled`: run the observer for command tasks.
    pub enabled: bool,
    /// `command`: argv with placeholders (see [`super::Placeholder`]); `None` (not set) means
    /// the default for the agent's version ([`ObserverConfig::command_for`]).
    pub command: Option<CommandTemplate>,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            command: None,
        }
    }
}

impl ObserverConfig {
    /// The observer command for a launch whose environment is `var`: the configured command
    /// as it is, else [`AgentGeneration::default_observer`] of the agent that launched.
    pub fn command_for<'a>(
        &self,
        var: impl Fn(&str) -> Option<&'a str>,
    ) -> Cow<'_, CommandTemplate> {
        match &self.command {
            Some(command) => Cow::Borrowed(command),
            None => Cow::Owned(AgentGeneration::from_env(var).default_observer()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn chosen(config: &ObserverConfig, env: &BTreeMap<String, String>) -> CommandTemplate {
        config
            .command_for(|name| env.get(name).map(String::as_str))
            .into_owned()
    }

    #[test]
    fn mesos_1_agents_get_the_task_command_form_whatever_the_flag_value() {
        for value in ["1", "0"] {
            let env = env(&[
                ("MESOS_HTTP_COMMAND_EXECUTOR", value),
                ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs"),
            ]);
            assert_eq!(
                chosen(&ObserverConfig::default(), &env),
                CommandTemplate::observer_task_command_form()
            );
        }
    }

    #[test]
    fn agents_before_1_0_get_deimos_override_form() {
        // A 0.28 agent (shutdown grace period, no HTTP command executor) and an older one.
        for env in [
            env(&[("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")]),
            env(&[("MESOS_DIRECTORY", "/tmp/sandbox")]),
        ] {
            assert_eq!(
                chosen(&ObserverConfig::default(), &env),
                CommandTemplate::observer_override_form()
            );
        }
    }

    #[test]
    fn an_operator_set_command_is_used_as_is_under_every_agent() {
        let own = CommandTemplate::observer_override_form();
        let config = ObserverConfig {
            enabled: true,
            command: Some(own.clone()),
        };
        for env in [env(&[("MESOS_HTTP_COMMAND_EXECUTOR", "1")]), env(&[])] {
            assert_eq!(chosen(&config, &env), own);
        }
    }
}
