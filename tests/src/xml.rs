//! A deliberately small XML reader for checking documents the node writes (DASH manifests):
//! well-formedness (one root, matched tags, quoted attributes, known entities) and a tree to
//! walk. No DTDs, CDATA or comments (the node writes none).

/// An element: its name, attributes in order, children and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order.
    pub attrs: Vec<(String, String)>,
    /// Child elements.
    pub children: Vec<Element>,
    /// Text directly inside, concatenated and entity-decoded.
    pub text: String,
}

impl Element {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn decode(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let tail = rest.get(i..).unwrap_or_default();
        let end = tail.find(';').ok_or("unterminated entity")?;
        out.push(match tail.get(..=end).unwrap_or_default() {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            "&apos;" => '\'',
            e => return Err(format!("unknown entity {e}")),
        });
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    if rest.contains('<') {
        return Err("'<' in text".into());
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || "_:.-".contains(x))
}

/// Parses `<name attr="v" ...` (without the `<` and the closing `>` or `/>`).
fn start_tag(inner: &str) -> Result<(String, Vec<(String, String)>), String> {
    let inner = inner.trim();
    let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
    let name = inner.get(..name_end).unwrap_or_default().to_owned();
    if !is_name(&name) {
        return Err(format!("bad tag name {name:?}"));
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut rest = inner.get(name_end..).unwrap_or_default().trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{name}>"))?;
        let key = rest.get(..eq).unwrap_or_default().trim().to_owned();
        if !is_name(&key) {
            return Err(format!("bad attribute name {key:?} in <{name}>"));
        }
        let after = rest.get(eq + 1..).unwrap_or_default().trim_start();
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'');
        let quote = quote.ok_or_else(|| format!("unquoted attribute {key} in <{name}>"))?;
        let body = after.get(1..).unwrap_or_default();
        let close = body
            .find(quote)
            .ok_or_else(|| format!("unterminated attribute {key} in <{name}>"))?;
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(format!("duplicate attribute {key} in <{name}>"));
        }
        attrs.push((key, decode(body.get(..close).unwrap_or_default())?));
        let next = body.get(close + 1..).unwrap_or_default();
        if !next.is_empty() && !next.starts_with(char::is_whitespace) {
            return Err(format!("attributes not separated in <{name}>"));
        }
        rest = next.trim_start();
    }
    Ok((name, attrs))
}

/// Parses a whole document; its root element.
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut rest = doc.trim_start();
    if let Some(decl) = rest.strip_prefix("<?xml") {
        let end = decl.find("?>").ok_or("unterminated XML declaration")?;
        rest = decl.get(end + 2..).unwrap_or_default();
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let lt = rest.find('<');
        let text = rest.get(..lt.unwrap_or(rest.len())).unwrap_or_default();
        match stack.last_mut() {
            Some(top) => top.text.push_str(&decode(text)?),
            None if !text.trim().is_empty() => return Err("text outside the root".into()),
            None => {}
        }
        let Some(lt) = lt else { break };
        let tag = rest.get(lt + 1..).unwrap_or_default();
        let gt = tag.find('>').ok_or("unterminated tag")?;
        let inner = tag.get(..gt).unwrap_or_default();
        rest = tag.get(gt + 1..).unwrap_or_default();
        if let Some(name) = inner.strip_prefix('/') {
            let el = stack.pop().ok_or("closing tag without an open one")?;
            if el.name != name.trim() {
                return Err(format!("</{}> closes <{}>", name.trim(), el.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None if root.is_none() => root = Some(el),
                None => return Err("two roots".into()),
            }
            continue;
        }
        let (inner, empty) = match inner.strip_suffix('/') {
            Some(i) => (i, true),
            None => (inner, false),
        };
        let (name, attrs) = start_tag(inner)?;
        if stack.is_empty() && root.is_some() {
            return Err("two roots".into());
        }
        let el = Element {
            name,
            attrs,
            children: Vec::new(),
            text: String::new(),
        };
        if empty {
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None => root = Some(el),
            }
        } else {
            stack.push(el);
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rejects() {
        let r =
            parse("<?xml version=\"1.0\"?>\n<a x=\"1\" y='&amp;'><b/>t&lt;<c>z</c></a>\n").unwrap();
        assert_eq!(r.name, "a");
        assert_eq!(r.attr("y"), Some("&"));
        assert_eq!(r.children.len(), 2);
        assert_eq!(r.text, "t<");
        assert_eq!(r.child("c").unwrap().text, "z");
        for bad in [
            "<a>",
            "<a></b>",
            "<a x=1></a>",
            "<a x=\"1\"x=\"2\"></a>",
            "<a></a><b/>",
            "x<a/>",
            "<a>&nbsp;</a>",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
