import PGCloneMetrics
import Testing

@Suite struct PGCloneMetricsTests {
    @Test func buildInfoIsExposedWithHelpText() {
        let metrics = PGCloneMetrics(version: "1.2.3")
        #expect(
            metrics.render() == """
                # HELP pgclone_build_info pgclone's version; always 1
                # TYPE pgclone_build_info gauge
                pgclone_build_info{version="1.2.3"} 1.0

                """
        )
    }
}
