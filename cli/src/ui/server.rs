//! The web view's HTTP/1.1 server: an accept loop on an injected listener
//! that stops when the injected shutdown future completes, a router over the
//! few paths, and the headers every answer carries.
//!
//! Only GET and HEAD are served, so no page changes anything. Unless
//! `--allow-remote` was given, a request whose Host header is not a loopback
//! name or address is refused, so a web page elsewhere cannot rebind a DNS
//! name to 127.0.0.1 and read the fleet through the operator's certificate.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use maud::html;
use tokio::net::TcpListener;

use super::page::{self, Frame, Nav, Page};
use super::upstream::{Upstream, status_of, title_of};
use super::{fleet, incidents, live};
use crate::error::CtlError;
use crate::settings::Settings;

/// The body of every answer.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Content-Security-Policy of every answer: only this origin's style sheet
/// and script, no inline script or style, no frames, forms only to itself.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct State {
    upstream: Upstream,
    allow_remote: bool,
}

/// Serves the web view on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    allow_remote: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CtlError> {
    let state = Arc::new(State {
        upstream: Upstream::new(settings),
        allow_remote,
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors and the like: wait a little, keep serving.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "web view connection ended");
            }
        });
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let now = gw502_vocab::clock::now_ms();
    let collector = state.upstream.url();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let err = CtlError::Config(format!("method {} is not served here", req.method()));
        let mut r = error_page(collector, &err, StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if !state.allow_remote
        && let Some(host) = req.headers().get(header::HOST)
        && !loopback_host(host.to_str().unwrap_or(""))
    {
        let err = CtlError::Config(format!(
            "the web view answers only to localhost, 127.0.0.1 or [::1], not to host \"{}\" \
             (start it with --allow-remote to serve other names)",
            String::from_utf8_lossy(host.as_bytes()).escape_debug()
        ));
        return error_page(collector, &err, StatusCode::FORBIDDEN);
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    tracing::debug!(%path, "web view request");
    let up = &state.upstream;
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let page = match parts.as_slice() {
        [] => incidents::list(up, query, now).await,
        ["incidents", id] => match id.parse::<u64>() {
            Ok(id) => incidents::show(up, id, now).await,
            Err(_) => Err(CtlError::NotFound(format!(
                "no incident {}",
                page::unseg(id).unwrap_or_default().escape_debug()
            ))),
        },
        ["hosts"] => fleet::hosts(up, now).await,
        ["hosts", id] => match page::unseg(id) {
            Some(id) => fleet::host(up, &id, now).await,
            None => Err(CtlError::NotFound("no such host".into())),
        },
        ["sites"] => fleet::sites(up, now).await,
        ["events"] => {
            return match live::events(up, query).await {
                Ok(body) => {
                    let mut r = Response::new(BodyExt::boxed_unsync(body));
                    set_headers(&mut r, "text/event-stream");
                    r
                }
                Err(err) => error_page(collector, &err, status_of(&err)),
            };
        }
        ["static", "style.css"] => return asset(page::STYLE, "text/css; charset=utf-8"),
        ["static", "live.js"] => return asset(live::SCRIPT, "text/javascript; charset=utf-8"),
        _ => Err(CtlError::NotFound(format!(
            "no page {}",
            path.escape_debug()
        ))),
    };
    match page {
        Ok(page) => html_response(collector, page, StatusCode::OK),
        Err(err) => {
            tracing::info!(%path, error = %err, "web view page failed");
            error_page(collector, &err, status_of(&err))
        }
    }
}

/// Whether a Host header names this machine's loopback.
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn html_response(collector: &str, page: Page, status: StatusCode) -> Response<Body> {
    let frame = Frame {
        title: &page.title,
        nav: page.nav,
        collector,
        live: page.live,
    };
    let html = page::shell(&frame, page.body).into_string();
    let mut r = Response::new(Full::new(Bytes::from(html)).boxed_unsync());
    *r.status_mut() = status;
    set_headers(&mut r, "text/html; charset=utf-8");
    r
}

/// The page of a failed request: what failed, and for the collector's
/// failures which collector and why.
fn error_page(collector: &str, err: &CtlError, status: StatusCode) -> Response<Body> {
    let upstream_failed = status == StatusCode::BAD_GATEWAY;
    let body = html! {
        section.card.error-card {
            h1 { (title_of(err)) }
            p.error-message { (err.to_string()) }
            @if upstream_failed {
                dl.facts {
                    dt { "collector" } dd { code { (collector) } }
                    dt { "answer" } dd { (status.as_u16()) " from the web view: the collector did not give one" }
                }
                p { "The web view reads the collector with your operator certificate, like every other "
                    code { "gw502ctl" } " command. Check that the collector runs and that "
                    code { "gw502ctl incidents" } " works, then reload this page." }
            }
            p { a href="/" { "back to incidents" } }
        }
    };
    let page = Page {
        title: title_of(err).to_owned(),
        nav: Nav::None,
        live: None,
        body,
    };
    html_response(collector, page, status)
}

fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync());
    set_headers(&mut r, content_type);
    r
}

fn set_headers(r: &mut Response<Body>, content_type: &'static str) {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:8502",
            "127.0.0.1:8502",
            "[::1]:8502",
            "app.localhost",
            "127.1.2.3",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8502",
            "10.77.0.1:8502",
            "[2001:db8::1]:80",
            "localhost.evil.example",
            "",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }
}
