"""The operator's view inside the Airflow UI: quality gates, Data Docs, dbt docs, exports.

A FastAPI app mounted in the api-server under :data:`URL_PREFIX` by the plugin
``plugins/oncopipe_operator_views.py``, linked from the UI's navigation (:data:`EXTERNAL_VIEWS`). Every page
requires a logged-in Airflow user (the UI's ``_token`` cookie or a bearer token). Folders are looked up at
request time, so a view shows an informative empty state until the platform has written what it serves:

- ``/quality``: the quality-gate history, ``<quality>/history.sqlite`` (one row per expectation checked), the
  source freshness dbt measured for each refresh (per source: age, thresholds, pass / warn / error), and its
  ledger of excluded lines (per extraction, source and exclusion rule);
- ``/data-docs/``: the Great Expectations Data Docs site, ``<quality>/data_docs/``; its pages load their
  scripts, styles and fonts from CDNs and their logo from a cloud bucket (with the data context id), so each page
  is rewritten as it is served to load them from ``/web-assets/`` (:data:`CDN_ASSETS`, vendored from the npm
  registry under ``orchestration/web_assets/`` with their licences): no request leaves the api-server's host,
  as no SNDS environment reaches the internet;
- ``/dbt-docs/``: the dbt docs of the published version (the copy saved at publish time, else the dbt target);
- ``/exports/``: the researcher exports' index, ``<exports>/index.html``, and the reports it links to.
"""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations (Request, ...) at runtime.
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import jinja2
from markupsafe import Markup

from oncopipe.contracts.settings import get_settings

URL_PREFIX = "/oncopipe"
HISTORY_FILE = "history.sqlite"
HISTORY_LIMIT = 500

WEB_ASSETS_DIR = Path(__file__).with_name("web_assets")
#: What the GX 1.x Data Docs pages load from the internet, and the vendored copy served instead (web_assets/).
CDN_ASSETS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "fontawesome-free@6.6.0/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js@1.12.9/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap@4.3.1/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap@4.3.1/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table@1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table@1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table@1.19.1/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table@1.19.1/bootstrap-table-filter-control.min.css",
    # GX links the 1.19.0 stylesheet of the filter extension next to the 1.19.1 scripts: the 1.19.1 one serves.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table@1.19.1/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table@1.19.1/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker@1.9.0/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker@1.9.0/bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark@1.1.0/bootstrap-prefers-dark.css",
}
#: The logo GX's pages load from its cloud bucket, with the data context id in the query string.
_CLOUD_LOGO = re.compile(r'src="https://great-expectations-web-assets\.s3[^"]*"')
_SRI = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"')
#: Any address off this host left in a page's src/href attributes of scripts, styles and images.
_REMOTE_LOAD = re.compile(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', re.IGNORECASE)


def offline_data_docs(text: str) -> str:
    """A Data Docs page that loads nothing from outside: each CDN address becomes the vendored copy under
    ``<URL_PREFIX>/web-assets/`` (subresource-integrity attributes dropped: same origin), the cloud-bucket logo
    becomes GX's own logo from the installed package.

    Raises:
        ValueError: a script, stylesheet or image still loads from another host (a GX upgrade added one: vendor
            it and add it to :data:`CDN_ASSETS`).
    """
    for remote, local in CDN_ASSETS.items():
        text = text.replace(f'"{remote}"', f'"{URL_PREFIX}/web-assets/{local}"')
    text = _CLOUD_LOGO.sub(f'src="{URL_PREFIX}/web-assets/gx/logo-long.png"', text)
    text = _SRI.sub("", text)
    left = _REMOTE_LOAD.findall(text)
    if left:
        raise ValueError(f"Data Docs page still loads from another host: {left[:3]}")
    return text


_ANGULAR_SRC = re.compile(r'(\s)(src|xlink:href)="(\{\{[^"]*\}\})"')


def unbound_images_deferred(text: str) -> str:
    """The dbt docs page with its AngularJS bindings of addresses deferred to Angular (``ng-src``,
    ``ng-attr-xlink:href``): written as ``xlink:href="{{ getIcon(...) }}"`` in the page's templates, the browser
    fetched that literal address before Angular bound it (two 404s on every page load)."""
    return _ANGULAR_SRC.sub(lambda m: f'{m.group(1)}{"ng-src" if m.group(2) == "src" else "ng-attr-xlink:href"}'
                                      f'="{m.group(3)}"', text)


def gx_logo() -> Path:
    """GX's logo as installed with great_expectations (what the pages showed from the cloud bucket)."""
    import importlib.util

    spec = importlib.util.find_spec("great_expectations")
    root = Path(spec.origin).parent if spec and spec.origin else Path()
    return root / "render" / "view" / "static" / "images" / "logo-long.png"


#: Navigation entries of the Airflow UI (Airflow 3 ``external_views``; ``url_route`` embeds them in the UI).
EXTERNAL_VIEWS: list[dict[str, str]] = [
    {"name": "Quality gates", "href": f"{URL_PREFIX}/quality", "url_route": "oncopipe-quality"},
    {"name": "Data Docs (GX)", "href": f"{URL_PREFIX}/data-docs/", "url_route": "oncopipe-data-docs"},
    {"name": "dbt docs", "href": f"{URL_PREFIX}/dbt-docs/", "url_route": "oncopipe-dbt-docs"},
    {"name": "Exports", "href": f"{URL_PREFIX}/exports/", "url_route": "oncopipe-exports"},
]
for _view in EXTERNAL_VIEWS:
    _view["destination"] = "nav"  # entries of the UI's "Plugins" menu

TEMPLATES_DIR = Path(__file__).with_name("templates")


def _cell(value: object, width: int = 200) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[:width] + "…"


def _environment() -> jinja2.Environment:
    """The views' templates (``orchestration/templates/``): HTML autoescaped, strict about undefined names."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["cell"] = _cell
    return environment


_TEMPLATES = _environment()


def render(template: str, title: str, **values: object) -> str:
    """An operator view's page from ``orchestration/templates/<template>``, with the views' navigation."""
    return _TEMPLATES.get_template(template).render(title=title, views=EXTERNAL_VIEWS, **values)


def empty_state(what: str, path: Path, how: str) -> str:
    """The page shown when a view has nothing to show yet: what is missing, where it is expected, what writes it.

    ``how`` is trusted markup written in this module (it may hold ``<code>``), never data.
    """
    return render("empty.html.j2", what, path=path, how=Markup(how))


def _history_table(connection: sqlite3.Connection) -> str | None:
    tables = [row[0] for row in connection.execute("select name from sqlite_master where type in ('table','view')")]
    for table in tables:
        columns = [row[1] for row in connection.execute(f'pragma table_info("{table}")')]
        if "expectation" in columns and "success" in columns:
            return table
    return None


def read_history(path: Path, *, failed_only: bool = False, stage: str | None = None,
                 limit: int = HISTORY_LIMIT) -> tuple[list[str], list[tuple]]:
    """Read the quality-gate history, newest first.

    Args:
        path: ``<quality>/history.sqlite``.
        failed_only: only the expectations that failed.
        stage: only this gate stage (``raw``, ``marts``).
        limit: at most this many rows.

    Returns:
        Column names and rows.

    Raises:
        ValueError: the file holds no table with ``expectation`` and ``success`` columns.
    """
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        table = _history_table(connection)
        if table is None:
            raise ValueError(f"{path}: no table with 'expectation' and 'success' columns")
        columns = [row[1] for row in connection.execute(f'pragma table_info("{table}")')]
        where, params = [], []
        if failed_only:
            where.append("not success")
        if stage and "stage" in columns:
            where.append("stage = ?")
            params.append(stage)
        sql = f'select * from "{table}"' + (f" where {' and '.join(where)}" if where else "")
        rows = connection.execute(sql + " order by rowid desc limit ?", [*params, limit]).fetchall()
        return columns, rows
    finally:
        connection.close()


def read_gate_runs(path: Path, limit: int = 50) -> tuple[list[str], list[tuple]]:
    """The per-run gate summary (``gate_runs``: passed, critical failures, warnings, quarantine), newest first.

    Returns empty lists when the history has no such table.
    """
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        if "gate_runs" not in tables:
            return [], []
        columns = [row[1] for row in connection.execute('pragma table_info("gate_runs")')]
        rows = connection.execute("select * from gate_runs order by rowid desc limit ?", (limit,)).fetchall()
        return columns, rows
    finally:
        connection.close()


def read_excluded_lines(path: Path, limit: int = 200) -> tuple[list[str], list[tuple]]:
    """The ledger of excluded lines (``excluded_lines``: per extraction, source and rule), newest first.

    Returns empty lists when the history has no such table (written by a raw gate older than the ledger).
    """
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        if "excluded_lines" not in tables:
            return [], []
        columns = ["extraction", "source", "rule", "column_name", "lines", "judged", "share", "ceiling",
                   "consequence", "sample_keys", "run_id"]
        rows = connection.execute(f"select {', '.join(columns)} from excluded_lines "
                                  "order by time desc, rowid desc limit ?", (limit,)).fetchall()
        return columns, rows
    finally:
        connection.close()


def read_freshness(path: Path) -> tuple[list[str], list[tuple], int]:
    """The source freshness of the latest refresh that checked it (``source_freshness``: one row per run and
    source), and how many earlier refreshes checked it; the last column, ``failed``, says whether that source
    stopped its refresh.

    Returns empty lists and 0 when the history has no such table (no refresh has checked freshness yet).
    """
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        if "source_freshness" not in tables:
            return [], [], 0
        columns = ["extraction", "source", "status", "max_loaded_at", "age_days", "warn_after", "error_after",
                   "snapshotted_at", "message", "run_id", "failed"]
        rows = connection.execute(
            f"select {', '.join(columns)} from source_freshness where run_id = "
            "(select run_id from source_freshness order by time desc, rowid desc limit 1) order by rowid").fetchall()
        runs = connection.execute("select count(distinct run_id) from source_freshness").fetchone()[0]
        return columns, rows, max(runs - 1, 0)
    finally:
        connection.close()


def _classed(rows: Sequence[tuple], failed: Callable[[tuple], bool],
             warned: Callable[[tuple], bool] = lambda row: False) -> list[tuple[str, tuple]]:
    return [("failed" if failed(row) else "warned" if warned(row) else "passed", row) for row in rows]


def quality_page(path: Path, *, failed_only: bool, stage: str | None) -> str:
    """The quality view: the source freshness of the latest refresh (error: red, warning: amber), the ledger of excluded
    lines (over the ceiling: red), the per-run gate summary (a run that did not pass: red) and the expectations
    checked (failed ones: red), newest first."""
    try:
        columns, rows = read_history(path, failed_only=failed_only, stage=stage)
        run_columns, runs = read_gate_runs(path)
        excluded_columns, excluded = read_excluded_lines(path)
        freshness_columns, freshness, earlier = read_freshness(path)
    except (ValueError, sqlite3.Error) as error:
        return render("quality.html.j2", "Quality gates", error=str(error))
    success = columns.index("success")
    passed = run_columns.index("passed") if "passed" in run_columns else None
    consequence = excluded_columns.index("consequence") if excluded_columns else None
    status = freshness_columns.index("status") if freshness_columns else None
    return render(
        "quality.html.j2", "Quality gates", error=None, limit=HISTORY_LIMIT, stage=stage, failed_only=failed_only,
        failed=sum(1 for row in rows if not row[success]),
        history={"columns": columns, "rows": _classed(rows, lambda row: not row[success])},
        runs={"columns": run_columns, "rows": _classed(runs, lambda row: passed is not None and not row[passed])},
        freshness={"columns": freshness_columns[:-1],  # the last, ``failed``, is shown as the row's colour
                   "rows": [(css, row[:-1]) for css, row in _classed(freshness, lambda row: bool(row[-1]),
                                                                     lambda row: row[status] == "warn")],
                   "earlier": earlier},
        excluded={"columns": excluded_columns,
                  "rows": _classed(excluded, lambda row: str(row[consequence]).startswith("quarantined"))})


def dbt_docs_dir() -> Path:
    """The dbt docs to serve: those saved with the published version (``<published>/<CURRENT>/dbt_docs``,
    ``CURRENT`` holding the version id), else the dbt target folder (``oncopipe dbt docs`` writes there)."""
    settings = get_settings()
    candidates = []
    current = settings.published / "CURRENT"
    if current.is_file():
        candidates.append(settings.published / current.read_text(encoding="utf-8").strip() / "dbt_docs")
    candidates.append(settings.dbt_target_dir)
    for candidate in candidates:
        if (candidate / "index.html").exists() or (candidate / "static_index.html").exists():
            return candidate
    return settings.dbt_target_dir


def safe_file(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..`` escape), else None."""
    root = root.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        return None
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def create_app():  # noqa: ANN201 (FastAPI is imported lazily: the plugin loads in every Airflow process)
    """The FastAPI app of the operator views."""
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

    authenticated = requires_authenticated()
    app = FastAPI(title="oncopipe operator views", dependencies=[Depends(authenticated)],
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.authenticated = authenticated  # tests override this dependency

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        settings = get_settings()
        return render("index.html.j2", "oncopipe operator views", quality=settings.quality,
                      exports=settings.exports, published=settings.published)

    @app.get("/quality", response_class=HTMLResponse)
    def quality(failed: bool = Query(False), stage: str | None = Query(None)) -> str:
        path = get_settings().quality / HISTORY_FILE
        if not path.exists():
            return empty_state("Quality gates", path,
                               "The raw and marts gates of <code>platform_refresh</code> record every expectation "
                               "they check there (run, extraction, stage, suite, severity, success, observed value).")
        return quality_page(path, failed_only=failed, stage=stage)

    def serve(root: Path, relative: str, what: str, how: str, index_names: Sequence[str] = ("index.html",)):
        if not root.exists() or not any((root / name).exists() for name in index_names):
            missing = root if not root.exists() else root / index_names[0]
            return HTMLResponse(empty_state(what, missing, how))
        if not relative:
            for name in index_names:
                if (root / name).exists():
                    relative = name
                    break
        target = safe_file(root, relative)
        if target is None:
            raise HTTPException(status_code=404, detail=f"{what}: no file {relative!r}")
        return FileResponse(target)

    @app.get("/data-docs")
    @app.get("/dbt-docs")
    @app.get("/exports")
    def slash(request: Request) -> RedirectResponse:  # relative links in the served sites need the trailing slash
        return RedirectResponse(url=request.url.path + "/", status_code=307)

    @app.get("/data-docs/{relative:path}")
    def data_docs(relative: str):
        response = serve(get_settings().quality / "data_docs", relative, "Data Docs (GX)",
                         "Great Expectations builds its Data Docs there each time a gate of "
                         "<code>platform_refresh</code> runs.")
        if isinstance(response, FileResponse) and str(response.path).endswith(".html"):
            text = Path(response.path).read_text(encoding="utf-8")
            try:
                return HTMLResponse(offline_data_docs(text))
            except ValueError as error:
                raise HTTPException(status_code=500, detail=f"{response.path}: {error}") from error
        return response

    @app.get("/web-assets/{relative:path}")
    def web_assets(relative: str) -> FileResponse:
        target = gx_logo() if relative == "gx/logo-long.png" else safe_file(WEB_ASSETS_DIR, relative)
        if target is None or not target.is_file():
            raise HTTPException(status_code=404, detail=f"no vendored asset {relative!r}")
        return FileResponse(target)

    @app.get("/dbt-docs/{relative:path}")
    def dbt_docs(relative: str):
        response = serve(dbt_docs_dir(), relative, "dbt docs",
                         "The dbt documentation of the published version appears once <code>platform_refresh</code> "
                         "has built and published the marts.", ("static_index.html", "index.html"))
        if isinstance(response, FileResponse) and str(response.path).endswith(".html"):
            return HTMLResponse(unbound_images_deferred(Path(response.path).read_text(encoding="utf-8")))
        return response

    @app.get("/exports/{relative:path}")
    def exports(relative: str):
        return serve(get_settings().exports, relative, "Exports",
                     "The study DAGs write the export index there once a study has delivered a result.")

    return app
