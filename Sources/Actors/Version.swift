/// pgclone's version: what `pgclone --version` prints, the `pgclone_build_info` metric's `version`,
/// and what every dump's metadata and S3 object record.
package let pgcloneVersion = "0.1.0"
