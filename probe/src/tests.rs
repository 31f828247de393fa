//! Probes against real servers on loopback: closed ports, missing and full
//! unix sockets, servers that close, reset, flood headers or hang, real nginx
//! with TLS, and a real PHP-FPM pool.

mod fastcgi_peer;
mod fpm;
mod nginx;
mod raw;
