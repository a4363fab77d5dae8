import PGCloneActors
import PGCloneStreams
import Testing

/// What a hook's command shows of the secrets in it: nothing, and of the rest, everything.
@Suite struct URLPasswordTests {
    @Test func everySecretInACommandIsMasked() {
        let command = """
            PGUSER=migrator PGPASSWORD=mig-S3cret AWS_SECRET_ACCESS_KEY="Top Secret" api_token='t0k' \
            psql 'postgresql://someone:s3cr3t-pw@db/x' 'host=db password = an0ther-pw' --auth-token=abc123 -c 'SELECT 1'
            """
        let shown = URLPassword.redactingAll(in: command)
        for secret in ["mig-S3cret", "Top Secret", "t0k", "s3cr3t-pw", "an0ther-pw", "abc123"] {
            #expect(!shown.contains(secret), "\(secret) in \(shown)")
        }
        #expect(
            shown == """
                PGUSER=migrator PGPASSWORD=**** AWS_SECRET_ACCESS_KEY=**** api_token=**** \
                psql 'postgresql://someone:****@db/x' 'host=db password = ****' --auth-token=**** -c 'SELECT 1'
                """
        )
    }

    /// The shell's ways of writing a value, options given their value in the next word, and
    /// HTTP credentials (cases a helper found shown).
    @Test(arguments: [
        ("PGPASSWORD=ab'c5secret' psql", "PGPASSWORD=**** psql"),
        (#"PGPASSWORD=pa\ 6secret psql"#, "PGPASSWORD=**** psql"),
        (#"psql "password='it\'s 12secret' host=db""#, #"psql "password=**** host=db""#),
        ("deploy --password 7secret --token 8secret -v", "deploy --password **** --token **** -v"),
        ("curl -H 'Authorization: Bearer 10secret' x", "curl -H 'Authorization: Bearer ****' x"),
        ("GITHUB_PAT=17secret make", "GITHUB_PAT=**** make"),
        // The blanks around = as they were.
        ("log: db password = 9secret next", "log: db password = **** next"),
        // After a colon, as YAML, JSON, Python and logs print one (cases a helper found shown).
        ("password: hunter22", "password: ****"),
        ("  db_password:   'hunter 22' # x", "  db_password:   '****' # x"),
        (#"{"user": "app", "password": "hun\"ter22", "n": 1}"#, #"{"user": "app", "password": "****", "n": 1}"#),
        (#"{"token":"t0k3n22"}"#, #"{"token":"****"}"#),
        ("{'secret': 'abc22', 'x': 1}", "{'secret': '****', 'x': 1}"),
        ("api_token: abc22, next: 1", "api_token: ****, next: 1"),
        // After a log prefix, which was taken for the name (cases a helper found shown).
        ("INFO: password: hunter2", "INFO: password: ****"),
        (
            "2024-05-01 12:30:00 DEBUG settings: password: pw_leak_3",
            "2024-05-01 12:30:00 DEBUG settings: password: ****"
        ),
        ("env: DB_PASSWORD: pw_leak_9", "env: DB_PASSWORD: ****"),
        // A value with blanks or commas, to its end (a helper found the rest shown).
        ("passphrase: correct horse battery staple", "passphrase: ****"),
        ("token: abc,def", "token: ****"),
        ("password: a}b", "password: ****"),
        ("private_key: -----BEGIN PRIVATE KEY-----pw_leak_27", "private_key: ****"),
        ("secret: abc22 # rotated monthly", "secret: **** # rotated monthly"),
        (#"credentials: {"user": "u", "password": "x"}"#, #"credentials: ****, "password": "****"}"#),
        ("secret_id: 8f3c2a1e-5b7d", "secret_id: ****"),
        ("VAULT_SECRET_ID=8f3c2a1e-5b7d", "VAULT_SECRET_ID=****"),
        // Values that start with $ but are no reference, YAML's '' quote, plural names, Ruby's
        // hashes and SQL (cases a helper found shown).
        ("password: $3cretDollar!", "password: ****"),
        (#""password": "$ecretJson""#, #""password": "****""#),
        ("password_hash: $2b$12$abcdefg", "password_hash: ****"),
        ("PGPASSWORD=$3cret psql", "PGPASSWORD=**** psql"),
        ("password: 'it''s pw'", "password: '****'"),
        ("passwords: plural_pw", "passwords: ****"),
        (#"{:password=>"ruby_pw"}"#, #"{:password=>"****"}"#),
        (#"{"password" => "ruby_pw2"}"#, #"{"password" => "****"}"#),
        ("LOG:  statement: ALTER ROLE app PASSWORD 'alter''pw'", "LOG:  statement: ALTER ROLE app PASSWORD '****'"),
        ("CREATE ROLE x LOGIN ENCRYPTED PASSWORD 'pw22'", "CREATE ROLE x LOGIN ENCRYPTED PASSWORD '****'"),
        // A value that only starts like a reference, a quoted name before =, E'' strings and a
        // list's comma (cases a helper found shown or damaged).
        ("password: $Passw0rd!2024", "password: ****"),
        (#"  + "DB_PASSWORD" = "tfsecret1""#, #"  + "DB_PASSWORD" = ****"#),
        (#"ALTER USER app PASSWORD E'escaped\'pw3';"#, "ALTER USER app PASSWORD '****';"),
        ("password=kw9, user=x", "password=****, user=x"),
        // Without a blank after the colon, and HTTP credentials of any scheme (cases a helper
        // found shown).
        ("password:hunter22", "password:****"),
        ("login {token:abc123}", "login {token:****}"),
        ("curl -H 'Authorization: Token tok123' x", "curl -H 'Authorization: Token ****' x"),
        ("Proxy-Authorization: Digest dig456", "Proxy-Authorization: Digest ****"),
        // Credentials in a dict, JSON or Go's map; camelCase names (AWS's); a value without a
        // blank after the colon is one word (cases a helper found shown, or hidden too far).
        ("{'Authorization': 'Token abc123'}", "{'Authorization': 'Token ****'}"),
        (#"{"headers":{"authorization":"token ghp_abc"}}"#, #"{"headers":{"authorization":"token ****"}}"#),
        ("map[Accept:[*/*] Authorization:[Token abc123]]", "map[Accept:[*/*] Authorization:[Token ****]]"),
        (#"  "SecretAccessKey": "abc/def+ghi","#, #"  "SecretAccessKey": "****","#),
        (#""SecretString": "{\"username\":\"admin\",\"password\":\"pw\"}""#, #""SecretString": "****""#),
        ("token:abc123 user=bob action=login", "token:**** user=bob action=login"),
    ])
    func secretsWrittenOtherwiseAreMasked(command: String, shown: String) {
        #expect(URLPassword.redactingAll(in: command) == shown)
    }

    /// A secret's value on the lines after its name: YAML's block scalar, and Kubernetes', Helm's
    /// and Ansible's items that name a secret and give its value apart, on one line or several
    /// (a helper found all shown).
    @Test func secretsOnTheLinesAfterTheirNamesAreMasked() {
        var lines = MultilineSecrets()
        let output = """
            env:
            - name: DB_PASSWORD
              value: "k8s-pw-1"
            - name: DB_USER
              value: app
            - name: API_TOKEN
              valueFrom:
                secretKeyRef:
                  name: api
                  key: token
            - {name: SECRET_KEY, value: flow-pw-2}
            - {"value": "json-pw-3", "name": "AUTH_TOKEN"}
            private_key: |
              -----BEGIN PRIVATE KEY-----

              MIIEv-block-4
            user: app
            tasks:
              - key: db_password
                value: ansible#pw-5 # rotated
              - key: db_host
                value: db.internal
            - name: TLS_SECRET\\r
              value: crlf-pw-6\\r
            - name: SIGNING_SECRET
              value: |
                block-pw-7
            "env": [
                {
                    "name": "DB_PASSWORD",
                    "value": "json-pw-8"
                },
                {
                    "name": "LOG_LEVEL",
                    "value": "debug"
                }
            ],
            {
                "Name": "/prod/db_password",
                "Type": "SecureString",
                "Value": "ssm-pw-9",
                "Version": 1
            }
            [{"name":"LOG_LEVEL","value":"debug"},{"name":"DB_PASSWORD","value":"arr-pw-10"}]
            - value: "unbalanced
                  + env {
                      + name  = "DB_PASSWORD"
                      + value = "tf-pw-11"
                    }
                  ~ env {
                        name  = "API_TOKEN"
                      ~ value = "tf-old-12" -> "tf-new-13"
                    }
            """
        let shown = output.split(separator: "\n", omittingEmptySubsequences: false).map {
            lines.redacting(String($0))
        }
        #expect(
            shown.joined(separator: "\n") == """
                env:
                - name: DB_PASSWORD
                  value: "****"
                - name: DB_USER
                  value: app
                - name: API_TOKEN
                  valueFrom:
                    secretKeyRef:
                      name: api
                      key: token
                - {name: SECRET_KEY, value: ****}
                - {"value": "****", "name": "AUTH_TOKEN"}
                private_key: ****
                  ****

                  ****
                user: app
                tasks:
                  - key: db_password
                    value: **** # rotated
                  - key: db_host
                    value: db.internal
                - name: TLS_SECRET\\r
                  value: ****\\r
                - name: SIGNING_SECRET
                  value: ****
                    ****
                "env": [
                    {
                        "name": "DB_PASSWORD",
                        "value": "****"
                    },
                    {
                        "name": "LOG_LEVEL",
                        "value": "debug"
                    }
                ],
                {
                    "Name": "/prod/db_password",
                    "Type": "SecureString",
                    "Value": "****",
                    "Version": 1
                }
                [{"name":"LOG_LEVEL","value":"debug"},{"name":"DB_PASSWORD","value":"****"}]
                - value: "unbalanced
                      + env {
                          + name  = "DB_PASSWORD"
                          + value = "****"
                        }
                      ~ env {
                            name  = "API_TOKEN"
                          ~ value = "****"
                        }
                """
        )
    }

    /// What is no secret stays as it is: the shell's syntax after a value, references to one,
    /// and names that only contain "key".
    @Test(arguments: [
        "psql --api-token=Zsecret; false",
        "SECRET=$(cat /run/secret) true",
        "curl 'https://x/?api_key=13secret&page=2'",
        "PGPASSWORD=$DB_PASSWORD psql",
        "psql --set=monkey=1 --primary-key=id",
        "python manage.py migrate --noinput && PGUSER=app psql -c 'SELECT 1' postgresql://app@db/x",
        // An empty value, as `env` or `echo` prints it: what follows was masked in its place.
        "PGPASSWORD= PGPASSFILE=/run/pgpass PGUSER=app",
        // The working directory, and what describes a secret rather than holds one.
        "PWD=/srv/app OLDPWD=/home/app",
        "password_encryption = scram-sha-256",
        "PASSWORD_MIN_LENGTH = 12 AWS_SESSION_TOKEN_FILE=/run/token",
        // Where a secret is fetched from, not the secret (a helper found it masked).
        "TOKEN_URL=https://auth.example/token SECRET_NAME=prod/db",
        // What a colon follows that is no assignment.
        "psql: error: password authentication failed for user \"app\"",
        "Password: ",
        "password:$DB_PASSWORD token: ${TOKEN}",
        "see https://example.org/token:abc and Vault::Secret::Store",
        // What AWS says of a secret (a date, an ID) rather than the secret.
        #""PasswordLastUsed": "2024-05-01T10:00:00Z", "AccessKeyId": "AKIAEXAMPLE", "SecretArn": "arn:aws:x""#,
        // Go's test results (a helper found the test's name masked).
        "--- PASS: TestPasswordReset (0.00s)",
        "token_count: 42, password_changed: true, password_changed_at: 2024-01-01, password_hint: my dog",
        "Applying users.0003_password_reset: OK",
        "secret_version: 3",
        "token: ${TOKEN} password: $(cat /run/pw)",
        // What says there is no value, or that it is hidden already.
        "password: null, token: ~, secret: [FILTERED], api_key: ****",
        "psql: error: FATAL:  password authentication failed for user \"app\"",
    ])
    func whatIsNoSecretIsShown(command: String) {
        let shown = URLPassword.redactingAll(in: command)
        let expected =
            switch command {
            case "psql --api-token=Zsecret; false": "psql --api-token=****; false"
            case "curl 'https://x/?api_key=13secret&page=2'": "curl 'https://x/?api_key=****&page=2'"
            default: command
            }
        #expect(shown == expected)
    }
}

/// A URL's secrets: the password in its user information, and query parameters named as secrets
/// (a Pushgateway URL's `?token=` was shown in full when pushing failed).
@Suite struct URLSecretTests {
    @Test func aURLsPasswordAndSecretQueryValuesAreMasked() {
        let url = "https://user:pa55@gw.example/metrics?job=x&token=Tok222&api_key=K3y&page=2#top"
        #expect(
            URLPassword.redacted(url) == "https://user:****@gw.example/metrics?job=x&token=****&api_key=****&page=2#top"
        )
        let message = "pushing to \(url) failed: token Tok222 refused"
        #expect(
            URLPassword.redacting(message, secretsOf: url)
                == "pushing to https://user:****@gw.example/metrics?job=x&token=****&api_key=****&page=2#top failed: "
                + "token **** refused"
        )
        #expect(URLPassword.redacted("http://gw:9091/?job=x") == "http://gw:9091/?job=x")
        #expect(
            URLPassword.redacted("https://gw/m?sig=S1&X-Amz-Signature=S2&auth=S3&key=S4&job=j")
                == "https://gw/m?sig=****&X-Amz-Signature=****&auth=****&key=****&job=j"
        )
    }

    /// The working directory is no secret, though `PWD` reads like one.
    @Test func theWorkingDirectoryIsNoSecret() {
        let values = URLPassword.secretValues(of: ["PWD": "/srv/app", "OLDPWD": "/srv", "DB_PASSWORD": "hunter22"])
        #expect(values == ["hunter22"])
        #expect(URLPassword.masking(values, in: "cd /srv/app") == "cd /srv/app")
    }
}
