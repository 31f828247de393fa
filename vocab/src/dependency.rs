//! The one matcher for "an app says a dependency it needs is failing": the
//! agent uses it to keep such journal lines even at info level (apps write
//! their tracebacks to stdout/stderr, which journald records at priority 6),
//! and the collector uses it to confirm `dependency_failure`. One table, so
//! the two sides cannot drift.
//!
//! The phrases are those real drivers and clients log: Python psycopg2
//! (`OperationalError: connection to server at "..." failed: Connection
//! refused`), PHP PDO (`SQLSTATE[HY000] [2002] Connection refused`), Node
//! (`connect ECONNREFUSED 127.0.0.1:5432`), redis-py (`Error 111 connecting to
//! 127.0.0.1:6379. Connection refused.`), Go (`dial tcp ...:6379: connect:
//! connection refused`), MySQL (`Can't connect to MySQL server`), Ruby
//! (`PG::ConnectionBad`).

/// Phrases that alone name a failing dependency (lowercase).
const PHRASES: &[&str] = &[
    "sqlstate[",
    "could not connect to server",
    "connection to server at",
    "connection to server on socket",
    "operationalerror",
    "pg::connectionbad",
    "can't connect to mysql",
    "can't connect to local mysql",
    "mysqli_sql_exception",
    "database is locked",
    "too many connections",
    "econnrefused",
    "etimedout",
    "ehostunreach",
    "connection pool",
    "redis.exceptions",
    "redis::cannotconnecterror",
    "memcache",
    "upstream api",
    "bad gateway from",
];

/// Ports of common dependencies (PostgreSQL, MySQL, Redis, memcached,
/// MongoDB, Elasticsearch, RabbitMQ).
const PORTS: &[&str] = &[
    ":5432", ":3306", ":6379", ":11211", ":27017", ":9200", ":5672",
];

/// Names of common dependencies.
const NAMES: &[&str] = &[
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "mongo",
    "database",
    "rabbitmq",
    "amqp",
    "elasticsearch",
    "memcached",
];

/// Connection failures, as errno text or errno numbers.
const FAILURES: &[&str] = &[
    "refused",
    "timed out",
    "timeout",
    "error 111 connecting",
    "error 110 connecting",
    "no route to host",
    "unreachable",
    "could not connect",
    "failed to connect",
];

/// Whether a log line of an app says a dependency it needs is failing.
/// A reverse proxy's own upstream errors (`connect() failed (111: ...) while
/// connecting to upstream`) never match: they are the proxy's evidence.
pub fn names_failing_dependency(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    if m.contains("while connecting to upstream") || m.contains("upstream:") {
        return false;
    }
    PHRASES.iter().any(|p| m.contains(p))
        || (FAILURES.iter().any(|f| m.contains(f))
            && (PORTS.iter().any(|p| m.contains(p)) || NAMES.iter().any(|n| m.contains(n))))
        || m.contains("error 111 connecting to")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_driver_lines_match() {
        for line in [
            "psycopg2.OperationalError: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
            "\tIs the server running on that host and accepting TCP/IP connections?\npsycopg2.OperationalError: could not connect to server: Connection refused",
            "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in /var/www/shop/db.php:7",
            "Error: connect ECONNREFUSED 127.0.0.1:5432",
            "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused.",
            "Error 111 connecting to cache.internal:7000. Connection refused.",
            "dial tcp 10.0.0.9:6379: connect: connection refused",
            "ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/run/mysqld/mysqld.sock' (2)",
            "PG::ConnectionBad: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory",
            "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection timeout expired",
        ] {
            assert!(names_failing_dependency(line), "{line}");
        }
    }

    #[test]
    fn other_lines_do_not() {
        for line in [
            "GET /health 200 3ms",
            "connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: shop.example, upstream: \"http://127.0.0.1:3000/\"",
            "Started app.service",
            "listening on 127.0.0.1:3000",
            "worker timeout, restarting",
        ] {
            assert!(!names_failing_dependency(line), "{line}");
        }
    }
}
