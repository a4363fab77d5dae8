import Foundation
import PGCloneActors
import PGCloneStreams
import Testing

@Suite struct PrivilegeStatementsTests {
    /// The object a REVOKE names, as pg_restore's "creating ACL" line names it: one object counted
    /// twice when its schema needed quotes (a helper's `"H40 Ext"`).
    @Test(arguments: [
        ("REVOKE ALL ON FUNCTION public.f(text) FROM PUBLIC", "FUNCTION public.f(text)"),
        (
            #"REVOKE ALL ON FUNCTION "H40 Ext".levenshtein(text, text) FROM PUBLIC"#,
            "FUNCTION H40 Ext.levenshtein(text, text)"
        ),
        (#"REVOKE ALL ON TYPE "x.Y ""z".hstore FROM PUBLIC"#, #"TYPE x.Y "z.hstore"#),
        (#"REVOKE ALL ON SCHEMA "My Schema" FROM PUBLIC"#, #"SCHEMA "My Schema""#),
        ("REVOKE ALL ON LANGUAGE plpgsql FROM PUBLIC", "LANGUAGE plpgsql"),
    ])
    func aRevokedObjectIsNamedAsPgRestoreNamesIt(statement: String, object: String) {
        #expect(PrivilegeStatements.revokedObject(in: statement) == object)
    }

    /// pg_restore's "creating ACL" names, its namespace first, as a REVOKE names the object.
    @Test(arguments: [
        ("public.FUNCTION soundex(text)", "FUNCTION public.soundex(text)"),
        ("x.Y z.TYPE hstore", "TYPE x.Y z.hstore"),
        ("LANGUAGE plpgsql", "LANGUAGE plpgsql"),
        (#"SCHEMA "My Schema""#, #"SCHEMA "My Schema""#),
    ])
    func anACLLineIsNamedAsARevokeNamesIt(line: String, object: String) {
        #expect(ChildStderr.aclObject(line) == object)
    }

    @Test func ownerChangesNameTheirRole() {
        #expect(PrivilegeStatements.newOwner(in: "ALTER TABLE public.t OWNER TO app;") == "app")
        #expect(
            PrivilegeStatements.newOwner(in: #"ALTER SCHEMA "my schema" OWNER TO "Read ""Only"" Role";"#)
                == #"Read "Only" Role"#
        )
        #expect(PrivilegeStatements.newOwner(in: "ALTER LARGE OBJECT 16400 OWNER TO app;") == "app")
        #expect(PrivilegeStatements.newOwner(in: "ALTER FUNCTION public.f() OWNER TO app") == "app")
        #expect(PrivilegeStatements.newOwner(in: "CREATE TABLE public.t (") == nil)
        #expect(PrivilegeStatements.newOwner(in: "ALTER TABLE ONLY public.o") == nil)
        #expect(PrivilegeStatements.newOwner(in: "ALTER TABLE public.t OWNER TO two words;") == nil)
    }

    @Test func refusalsSayWhichRoleAndWhy() {
        #expect(PrivilegeStatements.refusedRole(in: #"role "gone" does not exist"#)! == ("gone", .missingRole))
        #expect(PrivilegeStatements.refusedRole(in: #"must be member of role "other""#)! == ("other", .notAMember))
        #expect(PrivilegeStatements.refusedRole(in: #"must be able to SET ROLE "other""#)! == ("other", .notAMember))
        #expect(PrivilegeStatements.refusedRole(in: #"relation "t" does not exist"#) == nil)
        #expect(
            PrivilegeStatements.ownerRefusal("permission denied for schema public")
                == .other("permission denied for schema public")
        )
        #expect(PrivilegeStatements.ownerRefusal(#"role "gone" does not exist"#) == .missingRole)
        // The object is missing: not a question of who owns it.
        #expect(PrivilegeStatements.ownerRefusal(#"relation "public.t" does not exist"#) == nil)
    }

    @Test func anACLEntrySplitsIntoItsStatements() {
        let sql = """
            REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;
            GRANT ALL ON FUNCTION public.f() TO "semi;colon";
            SET SESSION AUTHORIZATION other;
            GRANT SELECT ON TABLE public."t;x" TO ro;
            RESET SESSION AUTHORIZATION;
            """
        #expect(
            PrivilegeStatements.split(sql) == [
                "REVOKE ALL ON FUNCTION public.f() FROM PUBLIC",
                #"GRANT ALL ON FUNCTION public.f() TO "semi;colon""#,
                "SET SESSION AUTHORIZATION other",
                #"GRANT SELECT ON TABLE public."t;x" TO ro"#,
                "RESET SESSION AUTHORIZATION",
            ]
        )
        #expect(PrivilegeStatements.split(#"GRANT SELECT ON TABLE "open TO ro;"#) == nil)
        #expect(
            PrivilegeStatements.defaultPrivilegesRole(
                in: #"ALTER DEFAULT PRIVILEGES FOR ROLE "app owner" IN SCHEMA public GRANT SELECT ON TABLES TO ro"#
            ) == "app owner"
        )
    }

    @Test func aclEntriesAreToldFromOthers() {
        #expect(PrivilegeStatements.isACLEntry("from TOC entry 3350; 0 0 ACL TABLE t appowner"))
        #expect(
            PrivilegeStatements.isACLEntry(
                "from TOC entry 2036; 826 16394 DEFAULT ACL DEFAULT PRIVILEGES FOR TABLES appowner"
            )
        )
        #expect(!PrivilegeStatements.isACLEntry("from TOC entry 215; 1259 16390 TABLE public t appowner"))
        #expect(!PrivilegeStatements.isACLEntry("from TOC entry 215; 1259 16390 TABLE public ACL appowner"))
        #expect(!PrivilegeStatements.isACLEntry(nil))
    }

    @Test func theSummaryIsOneLineWithCountsAndRoles() {
        var report = PrivilegeReport(restoringRole: "app")
        #expect(report.summary == nil)
        report.add(.owner, role: "other", .notAMember)
        #expect(
            report.summary
                == #"owners and privileges as in the dump, but for roles this server lacks or "app" may not act as: 1 "#
                + #"object of "other" ("app" may not SET ROLE to it) belongs to "app""#
        )
        report.add(.owner, role: "gone", .missingRole)
        report.add(.owner, role: "gone", .missingRole)
        report.add(.privilege, role: "gone", .missingRole)
        #expect(
            report.summary
                == #"owners and privileges as in the dump, but for roles this server lacks or "app" may not act as: 2 "#
                + #"objects of "gone" (no such role here) and 1 object of "other" ("app" may not SET ROLE to it) "#
                + #"belong to "app"; 1 privilege of "gone" (no such role here) was skipped"#
        )
    }

    /// Dumps of earlier releases say nothing of owners: restored without them, as before (pg_dump
    /// records owners in every archive, even with --no-owner).
    @Test func earlierDumpsRestoreWithoutOwnersAndPrivileges() throws {
        let earlier =
            #"{"createdAt":"2026-11-01T00:00:00Z","database":"app","format":"pgclone","formatVersion":1,"#
            + #""pgcloneVersion":"0.9","serverVersion":"15.8","settings":[]}"#
        let metadata = try #require(DumpMetadata(skippableFramePayload: Array(earlier.utf8)))
        #expect(metadata.owners == nil && metadata.privileges == nil)
        #expect(OwnershipOptions.restoring(metadata, noOwner: false, noACL: false, role: nil) == .none)
        #expect(
            OwnershipOptions.restoring(nil, noOwner: false, noACL: false, role: "r")
                == OwnershipOptions(owners: false, privileges: false, role: "r")
        )
        var current = metadata
        current.owners = true
        current.privileges = true
        #expect(
            OwnershipOptions.restoring(current, noOwner: false, noACL: false, role: nil)
                == OwnershipOptions(owners: true, privileges: true)
        )
        #expect(
            OwnershipOptions.restoring(current, noOwner: true, noACL: false, role: nil)
                == OwnershipOptions(owners: false, privileges: true)
        )
        current.privileges = false
        #expect(
            OwnershipOptions.restoring(current, noOwner: false, noACL: false, role: nil)
                == OwnershipOptions(owners: true, privileges: false)
        )
    }

    @Test func aParallelRestoreLeavesThePrivilegesToASerialOne() throws {
        let listing = """
            ;
            ; Archive created at 2026-11-30 01:32:38 UTC
            ;
            6; 2615 16395 SCHEMA - s other
            3348; 0 0 ACL - SCHEMA s other
            215; 1259 16390 TABLE public t appowner
            3341; 0 16390 TABLE DATA public t appowner
            3350; 0 0 ACL public TABLE t appowner
            2036; 826 16394 DEFAULT ACL - DEFAULT PRIVILEGES FOR TABLES appowner
            3352; 0 16400 MATERIALIZED VIEW DATA public mv appowner
            3353; 3466 16401 EVENT TRIGGER - et postgres
            3354; 0 0 COMMENT - EVENT TRIGGER et postgres
            3361; 0 0 BLOBS - BLOBS\u{20}
            """
        let passes = try #require(RestorePasses.split(listing: listing))
        #expect(
            passes.parallel.split(separator: "\n").filter { !$0.hasPrefix(";") } == [
                "6; 2615 16395 SCHEMA - s other", "215; 1259 16390 TABLE public t appowner",
                "3341; 0 16390 TABLE DATA public t appowner",
                "3361; 0 0 BLOBS - BLOBS ",
            ]
        )
        #expect(
            passes.serial.split(separator: "\n").filter { !$0.hasPrefix(";") }.map { $0.prefix(5) } == [
                "3348;", "3350;", "2036;", "3352;", "3353;", "3354;",
            ]
        )
        #expect(RestorePasses.split(listing: "215; 1259 16390 TABLE public t appowner\n") == nil)
        #expect(RestorePasses.owners(listing: listing) == ["other", "appowner", "postgres"])
    }

    /// The grantor pg_dump names before a chain's grants, as `fmtId` writes it or as a literal.
    @Test func theGrantorOfAChainIsRead() {
        #expect(PrivilegeStatements.sessionAuthorization(in: "SET SESSION AUTHORIZATION lead;") == "lead")
        #expect(
            PrivilegeStatements.sessionAuthorization(in: #"SET SESSION AUTHORIZATION "Lead ""x""";"#) == #"Lead "x""#
        )
        #expect(PrivilegeStatements.sessionAuthorization(in: "SET SESSION AUTHORIZATION 'o''brien';") == "o'brien")
        #expect(PrivilegeStatements.sessionAuthorization(in: "GRANT SELECT ON t TO lead;") == nil)
    }
}
