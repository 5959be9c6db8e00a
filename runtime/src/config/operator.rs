//! The operator's sections of `deimos.cfg` that every launcher enforces: `[policy]` (what a
//! task may ask of the host) and `[uris]` (how its URIs are fetched, with size caps), plus
//! `[containers] cfs_quota` (hard CPU limits), the one key of `deimos`' `[containers]` section
//! that `deimos-executor` applies too.

use std::path::{Path, PathBuf};

use super::values::{parse_bool, parse_host_dirs, parse_optional_dir};
use super::{parse_ini, read_first, ConfigError};
use crate::fetch::{CacheOptions, FetchOptions, DEFAULT_LOCAL_FILES_SETTING};
use crate::fetch::{DEFAULT_CACHE_SIZE, DEFAULT_MAX_EXTRACTED_SIZE, DEFAULT_MAX_SIZE};
use crate::hostpath::AllowedPaths;
use crate::policy::{ContainerPolicy, PolicySettings};
use crate::size::parse_positive_size;

/// Why one key of a section could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// The section has no such key.
    Unknown,
    /// The value is not valid for the key; the reason says why.
    Invalid(String),
}

impl From<String> for KeyProblem {
    fn from(reason: String) -> Self {
        Self::Invalid(reason)
    }
}

/// `[uris]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct UrisConfig {
    /// `unpack`: unpack fetched archives (tar, zip) into the sandbox.
    pub unpack: bool,
    /// `allowed_local_paths`: directories whose files `file://` URIs and absolute paths may
    /// fetch (resolved, symbolic links followed); empty (the default) refuses local files.
    pub allowed_local_paths: Vec<PathBuf>,
    /// `max_size`: largest download or copy of one URI, in bytes.
    pub max_size: u64,
    /// `max_extracted_size`: largest size one archive may unpack to, in bytes.
    pub max_extracted_size: u64,
    /// `cache_dir`: the fetch cache for URIs marked `cache` ([`DEFAULT_CACHE_DIR`]); an empty
    /// value (`None`) turns the cache off: such URIs are then fetched every time.
    pub cache_dir: Option<PathBuf>,
    /// `cache_size`: most bytes the fetch cache may hold ([`DEFAULT_CACHE_SIZE`]).
    pub cache_size: u64,
}

/// Default `[uris] cache_dir`.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/deimos/fetch";

/// The setting named when the fetch cache directory cannot be used.
const CACHE_DIR_SETTING: &str = "[uris] cache_dir";

impl Default for UrisConfig {
    fn default() -> Self {
        Self {
            unpack: true,
            allowed_local_paths: Vec::new(),
            max_size: DEFAULT_MAX_SIZE,
            max_extracted_size: DEFAULT_MAX_EXTRACTED_SIZE,
            cache_dir: Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

impl UrisConfig {
    /// The section's name.
    pub const SECTION: &'static str = "uris";
    /// The section's keys, in the order `deimos config` prints them.
    pub const KEYS: &'static [&'static str] = &[
        "unpack",
        "allowed_local_paths",
        "max_size",
        "max_extracted_size",
        "cache_dir",
        "cache_size",
    ];

    /// Applies one key (lower case) of the section.
    pub fn apply(&mut self, key: &str, raw: &str) -> Result<(), KeyProblem> {
        match key {
            "unpack" => self.unpack = parse_bool(raw)?,
            "allowed_local_paths" => self.allowed_local_paths = parse_host_dirs(raw)?,
            "max_size" => self.max_size = parse_positive_size(raw)?,
            "max_extracted_size" => self.max_extracted_size = parse_positive_size(raw)?,
            "cache_dir" => self.cache_dir = parse_optional_dir(raw)?,
            "cache_size" => self.cache_size = parse_positive_size(raw)?,
            _ => return Err(KeyProblem::Unknown),
        }
        Ok(())
    }

    /// The fetch options these settings give (other options at their defaults).
    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            unpack: self.unpack,
            local_files: AllowedPaths::new(
                self.allowed_local_paths.clone(),
                DEFAULT_LOCAL_FILES_SETTING,
            ),
            max_size: self.max_size,
            max_extracted_size: self.max_extracted_size,
            cache: self.cache_dir.as_ref().map(|dir| CacheOptions {
                dir: dir.clone(),
                max_size: self.cache_size,
                setting: CACHE_DIR_SETTING,
            }),
            ..FetchOptions::default()
        }
    }
}

/// `[policy]` section: what tasks may ask of the host, enforced on every container `deimos`
/// and `deimos-executor` start (Deimos passed any docker option through, D-17).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyConfig {
    /// `allow_privileged`: allow privileged containers (no by default).
    pub allow_privileged: bool,
    /// `allowed_host_paths`: directories under which host paths may be bind-mounted
    /// (resolved, symbolic links followed); the task's own sandbox is always allowed.
    pub allowed_host_paths: Vec<PathBuf>,
    /// `allow_volumes_from`: allow `--volumes-from` (another container's volumes may be host
    /// directories outside `allowed_host_paths`); no by default.
    pub allow_volumes_from: bool,
}

impl PolicyConfig {
    /// The section's name.
    pub const SECTION: &'static str = "policy";
    /// The section's keys, in the order `deimos config` prints them.
    pub const KEYS: &'static [&'static str] = &[
        "allow_privileged",
        "allowed_host_paths",
        "allow_volumes_from",
    ];

    /// Applies one key (lower case) of the section.
    pub fn apply(&mut self, key: &str, raw: &str) -> Result<(), KeyProblem> {
        match key {
            "allow_privileged" => self.allow_privileged = parse_bool(raw)?,
            "allowed_host_paths" => self.allowed_host_paths = parse_host_dirs(raw)?,
            "allow_volumes_from" => self.allow_volumes_from = parse_bool(raw)?,
            _ => return Err(KeyProblem::Unknown),
        }
        Ok(())
    }

    /// The container policy these settings give.
    pub fn container_policy(&self) -> ContainerPolicy {
        ContainerPolicy {
            allow_privileged: self.allow_privileged,
            host_paths: AllowedPaths::new(
                self.allowed_host_paths.clone(),
                "[policy] allowed_host_paths",
            ),
            allow_volumes_from: self.allow_volumes_from,
            settings: PolicySettings::DEIMOS_CFG,
        }
    }
}

/// The operator's sections of a `deimos.cfg`; [`Default`] is a configuration without a file:
/// everything refused, 1 GiB caps, CPU shares without a CFS quota.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperatorConfig {
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[uris]`.
    pub uris: UrisConfig,
    /// `[containers] cfs_quota`: enforce a task's cpus as a hard CFS quota besides the shares
    /// (what the Mesos agent's `--cgroups_enable_cfs` does for its Docker containerizer).
    pub cfs_quota: bool,
}

/// The section holding [`OperatorConfig::cfs_quota`]; its other keys are `deimos`' own.
const CONTAINERS_SECTION: &str = "containers";
/// The key of [`OperatorConfig::cfs_quota`].
const CFS_QUOTA_KEY: &str = "cfs_quota";

/// Reads `[policy]`, `[uris]` and `[containers] cfs_quota` from `deimos.cfg` text (`file`
/// names it in errors), any case for section names and keys. The other sections and keys
/// belong to the `deimos` containerizer, which checks them; here they are skipped. An unknown
/// key of `[policy]` or `[uris]`, or a malformed value of a key read here, is an error naming
/// the file, line, section and key.
pub fn parse_operator_config(text: &str, file: &str) -> Result<OperatorConfig, ConfigError> {
    let mut config = OperatorConfig::default();
    for section in parse_ini(text, file)? {
        let name = section.name.to_ascii_lowercase();
        for entry in &section.entries {
            let key = entry.key.to_ascii_lowercase();
            let (applied, keys) = match name.as_str() {
                PolicyConfig::SECTION => {
                    (config.policy.apply(&key, &entry.value), PolicyConfig::KEYS)
                }
                UrisConfig::SECTION => (config.uris.apply(&key, &entry.value), UrisConfig::KEYS),
                CONTAINERS_SECTION if key == CFS_QUOTA_KEY => (
                    parse_bool(&entry.value)
                        .map(|on| config.cfs_quota = on)
                        .map_err(KeyProblem::from),
                    &[CFS_QUOTA_KEY][..],
                ),
                CONTAINERS_SECTION => continue,
                _ => break,
            };
            applied
                .map_err(|problem| ConfigError::for_entry(file, &name, keys, entry, problem, ""))?;
        }
    }
    Ok(config)
}

/// Loads the operator's sections from `config_file` when given (it must exist), else from the
/// first existing file of `paths`; no file gives [`OperatorConfig::default`]. Returns the file
/// read, if any.
pub fn load_operator_config(
    config_file: Option<&Path>,
    paths: &[PathBuf],
) -> Result<(OperatorConfig, Option<PathBuf>), ConfigError> {
    match read_first(config_file, paths)? {
        Some((path, text)) => {
            let config = parse_operator_config(&text, &path.display().to_string())?;
            Ok((config, Some(path)))
        }
        None => Ok((OperatorConfig::default(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OperatorConfig, ConfigError> {
        parse_operator_config(text, "/etc/deimos.cfg")
    }

    #[test]
    fn no_sections_give_the_refusing_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, OperatorConfig::default());
        assert!(!config.policy.allow_privileged && !config.policy.allow_volumes_from);
        assert!(config.policy.allowed_host_paths.is_empty());
        assert!(config.uris.allowed_local_paths.is_empty() && config.uris.unpack);
        assert_eq!(config.uris.max_size, 1 << 30);
    }

    #[test]
    fn policy_and_uris_are_read_in_any_case_and_other_sections_are_skipped() {
        let text = "[docker]\nhost: tcp://x:1\n[POLICY]\nAllow_Privileged: yes\n\
                    allowed_host_paths: [\"/srv/data\"]\n[log]\nconsole: loud\n\
                    [uris]\nmax_size: 10MiB\nmax_extracted_size: 2G\nunpack: off\n";
        let config = parse(text).unwrap();
        assert!(config.policy.allow_privileged);
        assert_eq!(
            config.policy.allowed_host_paths,
            [PathBuf::from("/srv/data")]
        );
        assert_eq!(config.uris.max_size, 10 << 20);
        assert_eq!(config.uris.max_extracted_size, 2 << 30);
        assert!(!config.uris.unpack);
        assert_eq!(
            config.uris.cache_dir,
            Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            "the cache is on by default"
        );
        let policy = config.policy.container_policy();
        assert!(policy.allow_privileged);
        assert_eq!(config.uris.fetch_options().max_size, 10 << 20);
    }

    #[test]
    fn the_fetch_cache_is_configured_in_uris_and_an_empty_directory_turns_it_off() {
        let defaults = UrisConfig::default().fetch_options().cache.unwrap();
        assert_eq!(defaults.dir, PathBuf::from("/var/cache/deimos/fetch"));
        assert_eq!(defaults.max_size, 2 << 30);
        let config = parse("[uris]\ncache_dir: /srv/cache\nCache_Size: 500MiB\n").unwrap();
        let cache = config.uris.fetch_options().cache.unwrap();
        assert_eq!(
            (cache.dir, cache.max_size, cache.setting),
            (PathBuf::from("/srv/cache"), 500 << 20, "[uris] cache_dir")
        );
        let off = parse("[uris]\ncache_dir:\n").unwrap();
        assert_eq!(off.uris.fetch_options().cache, None);
        for (text, key, reason) in [
            ("[uris]\ncache_dir: cache\n", "cache_dir", "absolute"),
            ("[uris]\ncache_dir: /a/../b\n", "cache_dir", "'..'"),
            ("[uris]\ncache_size: 0\n", "cache_size", "more than zero"),
            ("[uris]\ncache_size: lots\n", "cache_size", "lots"),
        ] {
            let message = parse(text).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("/etc/deimos.cfg:2: [uris] {key}:"))
                    && message.contains(reason),
                "{message}"
            );
        }
    }

    #[test]
    fn cfs_quota_is_read_from_the_containers_section_and_its_other_keys_are_skipped() {
        assert!(!parse("").unwrap().cfs_quota);
        let text = "[containers]\nstop_grace_period: 30\nCFS_Quota: on\nsandbox_mount: /x\n";
        assert!(parse(text).unwrap().cfs_quota);
        let message = parse("[containers]\ncfs_quota: sometimes\n")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("/etc/deimos.cfg:2: [containers] cfs_quota:")
                && message.contains("not a boolean"),
            "{message}"
        );
    }

    #[test]
    fn bad_values_and_unknown_keys_name_file_line_section_and_key() {
        let message = parse("[policy]\n\nallow_privileged: maybe\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "/etc/deimos.cfg:3: [policy] allow_privileged: \"maybe\" is not a boolean \
             (true/false, yes/no, on/off, 1/0)"
        );
        let message = parse("[uris]\nmax_size: 0\n").unwrap_err().to_string();
        assert!(
            message.starts_with("/etc/deimos.cfg:2: [uris] max_size:")
                && message.contains("more than zero"),
            "{message}"
        );
        let message = parse("[uris]\nunpak: true\n").unwrap_err().to_string();
        assert!(
            message.contains(":2: [uris] has no key \"unpak\"")
                && message.contains("supported keys: unpack"),
            "{message}"
        );
    }

    #[test]
    fn loading_reads_the_given_file_or_the_first_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let (second, third) = (dir.path().join("b.cfg"), dir.path().join("c.cfg"));
        std::fs::write(&second, "[policy]\nallow_volumes_from: true\n").unwrap();
        std::fs::write(&third, "[policy]\nallow_privileged: true\n").unwrap();
        let paths = [dir.path().join("a.cfg"), second.clone(), third.clone()];
        let (config, source) = load_operator_config(None, &paths).unwrap();
        assert_eq!(source, Some(second));
        assert!(config.policy.allow_volumes_from && !config.policy.allow_privileged);
        let (config, source) = load_operator_config(Some(&third), &paths).unwrap();
        assert_eq!(source, Some(third));
        assert!(config.policy.allow_privileged);
        let missing = dir.path().join("missing.cfg");
        let error = load_operator_config(Some(&missing), &paths).unwrap_err();
        assert!(
            matches!(error, ConfigError::EnvFileMissing { .. }),
            "{error}"
        );
        let (config, source) = load_operator_config(None, &paths[..1]).unwrap();
        assert_eq!((config, source), (OperatorConfig::default(), None));
    }
}
