//! Checks made before HailoRT is asked to open the device, so the common setup mistakes get a
//! precise message instead of a bare status code. Paths hang off a root so tests can fake
//! /dev, /sys and /proc.

use std::path::{Path, PathBuf};

/// Kernel module of the Hailo-10H PCIe driver (hailort-drivers >= 5.0.1).
pub const MODULE: &str = "hailo1x_pci";
/// Device nodes: /dev/hailo0 up to driver 5.2, /dev/h1x-0 from 5.3.
pub const NODES: [&str; 2] = ["dev/hailo0", "dev/h1x-0"];
pub const GROUP: &str = "hailo";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Found and this process may read and write it.
    Usable(PathBuf),
    /// Found but not writable by this process.
    NoPermission(PathBuf),
    Missing,
}

pub struct Host {
    root: PathBuf,
    /// (effective uid, all group ids) to judge permissions as; default: this process.
    user: Option<(u32, Vec<u32>)>,
}

impl Default for Host {
    fn default() -> Self {
        Self::new("/")
    }
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            user: None,
        }
    }

    /// Judge node permissions as this user instead of the current process.
    pub fn as_user(mut self, uid: u32, groups: Vec<u32>) -> Self {
        self.user = Some((uid, groups));
        self
    }

    fn user(&self) -> (u32, Vec<u32>) {
        self.user.clone().unwrap_or_else(current_user)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Processes that hold a Hailo device node open, as "pid N (comm)", from the /proc/PID/fd
    /// links (only those this user may read: root sees all, a service user its own).
    pub fn device_holders(&self) -> Vec<String> {
        let nodes: Vec<PathBuf> = NODES.iter().map(|n| Path::new("/").join(n)).collect();
        let Ok(procs) = std::fs::read_dir(self.path("proc")) else {
            return Vec::new();
        };
        let me = std::process::id().to_string();
        let mut out = Vec::new();
        for p in procs.flatten() {
            let pid = p.file_name().to_string_lossy().into_owned();
            if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            let holds = fds
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| nodes.contains(&t)));
            if holds {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                out.push(format!("pid {pid} ({})", comm.trim()));
            }
        }
        out.sort();
        out
    }

    pub fn device_node(&self) -> NodeState {
        let mut denied = None;
        for rel in NODES {
            let p = self.path(rel);
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            let (uid, groups) = self.user();
            if permits_rw(&meta, uid, &groups) {
                return NodeState::Usable(p);
            }
            denied.get_or_insert(p);
        }
        denied.map_or(NodeState::Missing, NodeState::NoPermission)
    }

    pub fn module_loaded(&self) -> bool {
        if self.path(&format!("sys/module/{MODULE}")).is_dir() {
            return true;
        }
        std::fs::read_to_string(self.path("proc/modules"))
            .map(|m| {
                m.lines()
                    .any(|l| l.split_whitespace().next() == Some(MODULE))
            })
            .unwrap_or(false)
    }

    /// The loaded driver's version, from /sys/module/hailo1x_pci/version.
    pub fn driver_version(&self) -> Option<String> {
        std::fs::read_to_string(self.path(&format!("sys/module/{MODULE}/version")))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// None when the device can be opened; otherwise what to fix.
    pub fn problem(&self) -> Option<String> {
        match self.device_node() {
            NodeState::Usable(_) => None,
            NodeState::NoPermission(p) => Some(format!(
                "no permission to open {}: add the service user to the `{GROUP}` group \
                 (usermod -aG {GROUP} USER, then log in again) or give the node to that group with a udev rule \
                 (MODE=\"0660\", GROUP=\"{GROUP}\")",
                describe_node(&p)
            )),
            NodeState::Missing if !self.module_loaded() => Some(format!(
                "no Hailo device node (/dev/hailo0 or /dev/h1x-0) and the {MODULE} kernel module is not loaded: \
                 install the Hailo-10H PCIe driver and load it (modprobe {MODULE}); on NixOS enable hardware.hailo"
            )),
            NodeState::Missing => Some(format!(
                "the {MODULE} module is loaded but there is no /dev/hailo0 or /dev/h1x-0: the driver did not find \
                 the Hailo-10H (check `lspci -d 1e60:`, `dmesg | grep -i hailo` and the firmware files under \
                 /lib/firmware/hailo/hailo10h)"
            )),
        }
    }
}

/// Effective uid and every group id of this process.
pub fn current_user() -> (u32, Vec<u32>) {
    // SAFETY: plain libc queries; the buffer is sized from the first call.
    unsafe {
        let uid = libc::geteuid();
        let mut groups = vec![libc::getegid()];
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n > 0 {
            let mut buf = vec![0 as libc::gid_t; n as usize];
            let got = libc::getgroups(n, buf.as_mut_ptr());
            if got > 0 {
                groups.extend_from_slice(&buf[..got as usize]);
            }
        }
        (uid, groups)
    }
}

/// Name of a group id, from /etc/group.
pub fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_string())
    })
}

/// Classic Unix read+write permission check (root may do anything).
pub fn permits_rw(meta: &std::fs::Metadata, uid: u32, groups: &[u32]) -> bool {
    use std::os::unix::fs::MetadataExt;
    mode_permits_rw(meta.mode(), meta.uid(), meta.gid(), uid, groups)
}

fn mode_permits_rw(mode: u32, owner: u32, group: u32, uid: u32, groups: &[u32]) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if uid == owner {
        (mode >> 6) & 0o7
    } else if groups.contains(&group) {
        (mode >> 3) & 0o7
    } else {
        mode & 0o7
    };
    bits & 0o6 == 0o6
}

/// Owner, group and mode of a node, for messages.
pub fn describe_node(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(p) {
        Ok(m) => format!(
            "{} (mode {:o}, group {})",
            p.display(),
            m.mode() & 0o777,
            group_name(m.gid()).unwrap_or_else(|| m.gid().to_string())
        ),
        Err(e) => format!("{}: {e}", p.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_read_from_proc_fd_links() {
        let root = tempfile::tempdir().unwrap();
        for (pid, comm, target) in [
            ("4242", "hailo-ollama", "/dev/hailo0"),
            ("77", "bash", "/dev/null"),
            ("99", "hailortcli", "/dev/h1x-0"),
        ] {
            let fd = root.path().join("proc").join(pid).join("fd");
            std::fs::create_dir_all(&fd).unwrap();
            std::os::unix::fs::symlink(target, fd.join("3")).unwrap();
            std::fs::write(
                root.path().join("proc").join(pid).join("comm"),
                format!("{comm}\n"),
            )
            .unwrap();
        }
        std::fs::create_dir_all(root.path().join("proc/self")).unwrap();
        let h = Host::new(root.path());
        assert_eq!(
            h.device_holders(),
            vec![
                "pid 4242 (hailo-ollama)".to_string(),
                "pid 99 (hailortcli)".to_string()
            ]
        );
        assert!(Host::new(root.path().join("nothing"))
            .device_holders()
            .is_empty());
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_without_module_says_install_driver() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::new(d.path());
        assert_eq!(h.device_node(), NodeState::Missing);
        let m = h.problem().unwrap();
        assert!(m.contains("modprobe hailo1x_pci"), "{m}");
    }

    #[test]
    fn module_from_proc_modules_and_driver_version() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc")).unwrap();
        std::fs::write(
            d.path().join("proc/modules"),
            "hailo1x_pci 98304 0 - Live 0x0\n",
        )
        .unwrap();
        let h = Host::new(d.path());
        assert!(h.module_loaded());
        assert!(h.problem().unwrap().contains("did not find"));
        assert_eq!(h.driver_version(), None);
        std::fs::create_dir_all(d.path().join("sys/module/hailo1x_pci")).unwrap();
        std::fs::write(d.path().join("sys/module/hailo1x_pci/version"), "5.1.1\n").unwrap();
        assert_eq!(h.driver_version().as_deref(), Some("5.1.1"));
    }

    #[test]
    fn usable_node_and_h1x_name() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("dev")).unwrap();
        std::fs::write(d.path().join("dev/h1x-0"), "").unwrap();
        let h = Host::new(d.path());
        assert_eq!(
            h.device_node(),
            NodeState::Usable(d.path().join("dev/h1x-0"))
        );
        assert_eq!(h.problem(), None);
    }

    #[test]
    fn unix_permission_rules() {
        // 0660 root:hailo(990)
        assert!(mode_permits_rw(0o660, 0, 990, 1000, &[100, 990]));
        assert!(!mode_permits_rw(0o660, 0, 990, 1000, &[100]));
        assert!(mode_permits_rw(0o600, 1000, 990, 1000, &[]));
        assert!(!mode_permits_rw(0o640, 0, 990, 1000, &[990]));
        assert!(mode_permits_rw(0o666, 0, 0, 1000, &[]));
        assert!(mode_permits_rw(0o000, 5, 5, 0, &[]));
    }

    #[test]
    fn node_without_permission_names_group() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("dev")).unwrap();
        let node = d.path().join("dev/hailo0");
        std::fs::write(&node, "").unwrap();
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o660)).unwrap();
        let gid = std::fs::metadata(&node).unwrap().gid();
        // A user that is neither the owner nor in the node's group.
        let h = Host::new(d.path()).as_user(54321, vec![54321]);
        assert_eq!(h.device_node(), NodeState::NoPermission(node.clone()));
        let m = h.problem().unwrap();
        assert!(m.contains("`hailo` group"), "{m}");
        assert!(m.contains("mode 660"), "{m}");
        // The same user in the node's group may open it.
        let h = Host::new(d.path()).as_user(54321, vec![gid]);
        assert_eq!(h.device_node(), NodeState::Usable(node));
    }
}
