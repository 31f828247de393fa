//! The question a probe asks each proxy about a response: is this your own
//! error page? The probe lowercases once and asks every proxy of the
//! registry; body marks are checked before the edges' header rules, weak
//! header-only marks after them (a CDN in front may copy a `Server` header).

/// A response as the fingerprint sees it.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The status code.
    pub status: u16,
    /// Every `Server` header value, lowercased and joined with `, `.
    pub server: &'a str,
    /// The body prefix (first 64 KiB), lowercased.
    pub body: &'a str,
    /// Whether the body is empty.
    pub empty: bool,
}

/// How a proxy recognised its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMark {
    /// Text only its own error page carries (captured from the real proxy).
    Body,
    /// Only its `Server` header on an empty 5xx: weaker, checked after the
    /// edges' own markers.
    Header,
}
