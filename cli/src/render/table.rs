//! Plain-text tables: a header row and left-aligned columns separated by two
//! spaces, every cell escaped and truncated.

use super::{MAX_CELL, cell};

/// A table being built row by row.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    max_cell: usize,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            max_cell: MAX_CELL,
        }
    }

    /// Sets the widest a cell gets (default [`MAX_CELL`]).
    pub fn max_cell(mut self, max: usize) -> Table {
        self.max_cell = max.max(2);
        self
    }

    /// Adds a row; cells are escaped and truncated, missing cells are blank.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(|c| cell(c.as_ref(), self.max_cell))
            .collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_cells_are_safe() {
        let mut t = Table::new(&["id", "site"]).max_cell(10);
        t.row(["1", "shop"]);
        t.row(["1234", "evil\x1b[31mred-and-very-long"]);
        let out = t.render();
        assert_eq!(out, "id    site\n1     shop\n1234  evil\\u{1b…\n");
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn short_rows_are_padded() {
        let mut t = Table::new(&["a", "b", "c"]);
        t.row(["x"]);
        assert_eq!(t.render(), "a  b  c\nx\n");
    }
}
