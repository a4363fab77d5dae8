import PGCloneActors
import Testing

/// Which `lc_messages` values make PostgreSQL write English, which pgclone reads.
@Suite struct WritesEnglishTests {
    @Test(arguments: ["", "C", "POSIX", "C.UTF-8", "c.utf8", "en_US.UTF-8", "en_GB", "English_United States.1252"])
    func english(lcMessages: String) {
        #expect(PostgresConnection.writesEnglish(lcMessages))
    }

    @Test(arguments: ["de_DE.UTF-8", "fr_FR", "ja_JP.eucJP", "German_Germany.1252", "cs_CZ@euro"])
    func another(lcMessages: String) {
        #expect(!PostgresConnection.writesEnglish(lcMessages))
    }
}
