//! The nginx configuration syntax: a tokenizer that follows
//! `ngx_conf_read_token` (quotes, backslash escapes, `#` comments, `${var}`
//! inside words) and a tree builder for directives and blocks. It also splits
//! `nginx -T` output into its files (`# configuration file /path:` headers).
//!
//! Everything is iterative and bounded, so hostile or truncated input cannot
//! overflow the stack: unbalanced braces are closed at end of input.

/// The most nested blocks kept; deeper blocks are flattened into the last one.
const MAX_DEPTH: usize = 64;
/// The most directives kept per file.
const MAX_DIRECTIVES: usize = 200_000;

/// One directive: `name args...;` or `name args... { block }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directive {
    /// The directive name, e.g. `proxy_pass`.
    pub name: String,
    /// Its arguments with quotes removed and escapes applied.
    pub args: Vec<String>,
    /// The block, for `http`, `server`, `location`, `upstream`, ...
    pub block: Option<Vec<Directive>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

/// Splits text into tokens.
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '{' => {
                chars.next();
                tokens.push(Token::Open);
            }
            '}' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some('n') => word.push('\n'),
                            Some(q) if q == '"' || q == '\'' || q == '\\' => word.push(q),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => break,
                        },
                        q if q == quote => break,
                        other => word.push(other),
                    }
                }
                tokens.push(Token::Word(word));
            }
            _ => {
                let mut word = String::new();
                let mut in_var_brace = false;
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == ';' || (c == '}' && !in_var_brace) {
                        break;
                    }
                    if c == '{' {
                        if word.ends_with('$') {
                            in_var_brace = true;
                        } else {
                            break;
                        }
                    }
                    if c == '}' {
                        in_var_brace = false;
                    }
                    chars.next();
                    if c == '\\' {
                        match chars.next() {
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some('n') => word.push('\n'),
                            Some(q) if q == '"' || q == '\'' || q == '\\' => word.push(q),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => word.push('\\'),
                        }
                        continue;
                    }
                    word.push(c);
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    tokens
}

/// Parses one file's text into its top-level directives.
pub fn parse(text: &str) -> Vec<Directive> {
    // stack[0] is the top level; each open block pushes (directive, children).
    let mut stack: Vec<(Directive, Vec<Directive>)> = vec![(Directive::default(), Vec::new())];
    let mut current: Option<Directive> = None;
    let mut count = 0usize;
    for token in tokenize(text) {
        match token {
            Token::Word(word) => match current.as_mut() {
                Some(d) => d.args.push(word),
                None => {
                    current = Some(Directive {
                        name: word,
                        ..Directive::default()
                    })
                }
            },
            Token::Semicolon => {
                if let Some(d) = current.take() {
                    count += 1;
                    if count <= MAX_DIRECTIVES
                        && let Some(top) = stack.last_mut()
                    {
                        top.1.push(d);
                    }
                }
            }
            Token::Open => {
                let d = current.take().unwrap_or_default();
                if stack.len() < MAX_DEPTH {
                    stack.push((d, Vec::new()));
                } else if let Some(top) = stack.last_mut() {
                    top.1.push(d);
                }
            }
            Token::Close => {
                if let Some(d) = current.take()
                    && let Some(top) = stack.last_mut()
                {
                    top.1.push(d);
                }
                close_block(&mut stack);
            }
        }
    }
    if let Some(d) = current.take()
        && let Some(top) = stack.last_mut()
    {
        top.1.push(d);
    }
    while stack.len() > 1 {
        close_block(&mut stack);
    }
    stack
        .pop()
        .map(|(_, children)| children)
        .unwrap_or_default()
}

fn close_block(stack: &mut Vec<(Directive, Vec<Directive>)>) {
    if stack.len() < 2 {
        return;
    }
    if let Some((mut d, children)) = stack.pop() {
        d.block = Some(children);
        if let Some(top) = stack.last_mut() {
            top.1.push(d);
        }
    }
}

/// Splits `nginx -T` output into (path, text) per dumped file, in order.
/// Text before the first header (the `syntax is ok` lines) is dropped.
pub fn split_dump(dump: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in dump.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if let Some(path) = trimmed
            .strip_prefix("# configuration file ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            files.push((path.to_string(), String::new()));
        } else if let Some(last) = files.last_mut() {
            last.1.push_str(line);
        }
    }
    files
}

/// Matches a glob (`*`, `?`) as nginx's `include` uses it against a path.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), path.chars().collect());
    let (mut pi, mut si) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_quotes_escapes_comments_and_vars() {
        let d = parse(
            "log_format main '$remote_addr \"$request\"' ; # c { ;\n\
             set $x \"a\\\"b\"; rewrite ^/(.*)$ /${x}y{ break; }",
        );
        assert_eq!(d[0].args, vec!["main", "$remote_addr \"$request\""]);
        assert_eq!(d[1].args, vec!["$x", "a\"b"]);
        assert_eq!(d[2].name, "rewrite");
        assert_eq!(d[2].args, vec!["^/(.*)$", "/${x}y"]);
        assert_eq!(d[2].block.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn builds_nested_blocks_and_survives_unbalanced_input() {
        let d = parse("http { server { listen 80; location / { proxy_pass http://a; } } }");
        let server = &d[0].block.as_ref().unwrap()[0];
        assert_eq!(server.name, "server");
        assert_eq!(server.block.as_ref().unwrap().len(), 2);
        assert_eq!(parse("}}}{{{ a b").len(), 1);
        assert_eq!(parse(&"{".repeat(100_000)).len(), 1);
    }

    #[test]
    fn splits_dump_and_matches_globs() {
        let files = split_dump(
            "nginx: the configuration file /e/n.conf syntax is ok\n# configuration file /e/n.conf:\na;\n# configuration file /e/c/x.conf:\nb;\n",
        );
        assert_eq!(files.len(), 2);
        assert_eq!(files[1], ("/e/c/x.conf".to_string(), "b;\n".to_string()));
        assert!(glob_match("/e/c/*.conf", "/e/c/x.conf"));
        assert!(!glob_match("/e/c/*.conf", "/e/c/x.conf.bak"));
        assert!(glob_match("/e/sites-enabled/*", "/e/sites-enabled/default"));
    }
}
