//! The page shell (head, header with the logo and navigation, footer, scripts) and the small
//! error pages.

use crate::http::ui::html::Html;

/// What every page needs to build its links.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    /// The normalized `url_prefix` (empty or `/a/b`), prepended to every generated URL.
    pub(crate) prefix: &'a str,
    /// The server's version, shown in the footer.
    pub(crate) version: &'a str,
}

/// Which page a document is: its `data-page` value and the script it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// The task list and launch form.
    Index,
    /// One task.
    Task,
    /// The cluster overview.
    Cluster,
    /// An error page (no script).
    Error,
}

impl PageKind {
    fn name(self) -> &'static str {
        match self {
            PageKind::Index => "index",
            PageKind::Task => "task",
            PageKind::Cluster => "cluster",
            PageKind::Error => "error",
        }
    }
}

/// A complete page: `extra_body_attributes` is markup added to `<body>` (e.g. `data-task-id`),
/// `main` the page content.
pub(crate) fn document(
    site: Site<'_>,
    kind: PageKind,
    title: &str,
    extra_body_attributes: &Html,
    main: &Html,
) -> String {
    let mut html = Html::new();
    html.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<title>")
        .text(title)
        .raw(" · Eremetic</title>\n<link rel=\"icon\" type=\"image/svg+xml\" href=\"")
        .text(site.prefix)
        .raw("/static/logo.svg\">\n<link rel=\"stylesheet\" href=\"")
        .text(site.prefix)
        .raw("/static/eremetic.css\">\n</head>\n<body data-page=\"")
        .raw(kind.name())
        .raw("\" data-prefix=\"")
        .text(site.prefix)
        .raw("\"")
        .html(extra_body_attributes)
        .raw(">\n");
    header(&mut html, site);
    html.raw("<main>\n")
        .html(main)
        .raw("</main>\n<footer>Eremetic ")
        .text(site.version)
        .raw(" · all times in UTC</footer>\n");
    if kind != PageKind::Error {
        html.raw("<script src=\"")
            .text(site.prefix)
            .raw("/static/ansi.js\"></script>\n<script src=\"")
            .text(site.prefix)
            .raw("/static/eremetic.js\"></script>\n");
    }
    html.raw("</body>\n</html>\n");
    html.into_string()
}

/// The header: the logo links to the prefix (fix of E-30), then the navigation.
fn header(html: &mut Html, site: Site<'_>) {
    html.raw("<header class=\"top\">\n<a class=\"logo\" href=\"")
        .text(site.prefix)
        .raw("/\"><img src=\"")
        .text(site.prefix)
        .raw("/static/logo.svg\" alt=\"\" width=\"28\" height=\"28\"> Eremetic</a>\n")
        .raw("<nav><a href=\"")
        .text(site.prefix)
        .raw("/\">Tasks</a> <a href=\"")
        .text(site.prefix)
        .raw("/cluster\">Cluster</a></nav>\n</header>\n");
}

/// The 404 page; `what` says what was not found (it names the task id for task pages).
pub(crate) fn not_found(site: Site<'_>, what: &str) -> String {
    let mut main = Html::new();
    main.raw("<section class=\"error-page\">\n<h1>Not found</h1>\n<p id=\"not-found\">")
        .text(what)
        .raw("</p>\n<p><a href=\"")
        .text(site.prefix)
        .raw("/\">Back to the task list</a></p>\n</section>\n");
    document(site, PageKind::Error, "Not found", &Html::new(), &main)
}

/// The 500 page for a failed read.
pub(crate) fn server_error(site: Site<'_>, detail: &str) -> String {
    let mut main = Html::new();
    main.raw("<section class=\"error-page\">\n<h1>Something went wrong</h1>\n<p>")
        .text(detail)
        .raw("</p>\n</section>\n");
    document(site, PageKind::Error, "Error", &Html::new(), &main)
}

/// The 401 page. It cannot use the stylesheet: static files need credentials too.
pub(crate) fn unauthorized() -> String {
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
     <title>Authentication required · Eremetic</title>\n</head>\n<body>\n\
     <h1>Authentication required</h1>\n\
     <p>This Eremetic server needs credentials. Reload the page to sign in again, or send an \
     <code>Authorization</code> header (Basic or Bearer).</p>\n</body>\n</html>\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: Site<'static> = Site {
        prefix: "/pre",
        version: "1.0",
    };

    #[test]
    fn every_link_and_asset_carries_the_prefix() {
        let page = document(SITE, PageKind::Index, "Tasks", &Html::new(), &Html::new());
        for needle in [
            "class=\"logo\" href=\"/pre/\"",
            "href=\"/pre/static/eremetic.css\"",
            "src=\"/pre/static/eremetic.js\"",
            "href=\"/pre/cluster\"",
            "data-prefix=\"/pre\"",
        ] {
            assert!(page.contains(needle), "missing {needle} in {page}");
        }
        assert!(!page.contains("href=\"/\""), "{page}");
    }

    #[test]
    fn not_found_page_names_what_was_missing_escaped() {
        let page = not_found(SITE, "no task with id <x>");
        assert!(page.contains("no task with id &lt;x&gt;"), "{page}");
        assert!(!page.contains("<x>"));
        assert!(!page.contains("<script"));
    }
}
