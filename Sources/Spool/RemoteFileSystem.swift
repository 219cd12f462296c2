import CLinux

/// Network file systems, where inotify hears only what this machine writes: a dataset copied
/// onto an NFS or SMB share from another machine sends no event to a daemon whose spool is that
/// share mounted here, and waited for a restart. The daemon scans such a spool periodically.
public enum RemoteFileSystem {
    /// statfs(2) `f_type` values of network and shared file systems (linux/magic.h), by name.
    /// FUSE is among them: sshfs, s3fs, GlusterFS, virtiofs, rclone (a local FUSE file system
    /// gets scans it does not need, which cost a listing of the spool).
    static let names: [Int: String] = [
        0x6969: "NFS", 0x517B: "SMB", 0xFF53_4D42: "CIFS", 0xFE53_4D42: "SMB2", 0x6573_5546: "FUSE",
        0x0102_1997: "9p", 0x00C3_6400: "Ceph", 0x5346_414F: "AFS", 0x6B41_4653: "AFS", 0x7375_7245: "Coda",
        0x7461_636F: "OCFS2", 0x0116_1970: "GFS2", 0x0BD0_0BD0: "Lustre", 0x786F_4256: "VirtualBox shared folder",
    ]

    /// The network file system's name for a statfs type; nil for a local one.
    public static func name(forType type: Int) -> String? { names[type] }

    /// The network file system `path` is on; nil on a local one, or when it cannot be told.
    public static func name(at path: String) -> String? {
        let type = synthd_filesystem_type(path)
        return type < 0 ? nil : name(forType: Int(type))
    }
}
