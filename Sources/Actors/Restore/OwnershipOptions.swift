package import PGCloneStreams

/// What a restore takes of the dump's owners and privileges: pg_restore's `--no-owner`,
/// `--no-acl` and `--role`.
package struct OwnershipOptions: Sendable, Hashable {
    /// Objects get the owners the dump names (pg_restore's `ALTER … OWNER TO`).
    package var owners: Bool
    /// The dump's GRANTs and REVOKEs, default privileges included.
    package var privileges: Bool
    /// SET ROLE to this role before restoring: it creates every object, and owns those whose owner
    /// is not given to them.
    package var role: String?

    package init(owners: Bool, privileges: Bool, role: String? = nil) {
        self.owners = owners
        self.privileges = privileges
        self.role = role
    }

    /// Neither owners nor privileges: the dumps of earlier releases, and `verify`.
    package static let none = OwnershipOptions(owners: false, privileges: false)

    /// What a restore of a dump takes: what the dump holds (its metadata says; nothing when it
    /// does not, as for a dump of an earlier release), less what `--no-owner` and `--no-acl` leave out.
    package static func restoring(
        _ metadata: DumpMetadata?,
        noOwner: Bool,
        noACL: Bool,
        role: String?
    ) -> OwnershipOptions {
        OwnershipOptions(
            owners: !noOwner && metadata?.owners == true,
            privileges: !noACL && metadata?.privileges == true,
            role: role
        )
    }

    var pgRestoreArguments: [String] {
        (owners ? [] : ["--no-owner"]) + (privileges ? [] : ["--no-acl"]) + (role.map { ["--role=\($0)"] } ?? [])
    }
}
