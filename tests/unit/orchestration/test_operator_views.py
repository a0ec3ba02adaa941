"""Operator views: empty states, the quality-gate history table, static sites served without path escapes."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from oncopipe.orchestration.operator_views import EXTERNAL_VIEWS, create_app, read_history


@pytest.fixture()
def client(oncopipe_home):
    app = create_app()
    app.dependency_overrides[app.state.authenticated] = lambda: None
    return TestClient(app)


def _history(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("create table gate_results (run_id text, extraction text, stage text, suite text, "
                   "expectation text, severity text, success integer, observed_value text)")
        db.executemany("insert into gate_results values (?,?,?,?,?,?,?,?)", rows)
        db.execute("create table gate_runs (run_id text, stage text, passed integer, critical_failures integer)")
        db.execute("insert into gate_runs values ('r1', 'raw', 0, 1)")


def test_views_are_in_the_navigation():
    assert {v["destination"] for v in EXTERNAL_VIEWS} == {"nav"}
    assert all(v["href"].startswith("/oncopipe/") for v in EXTERNAL_VIEWS)


@pytest.mark.parametrize("path", ["/quality", "/data-docs/", "/dbt-docs/", "/exports/"])
def test_empty_state_names_the_missing_folder(client, oncopipe_home, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "id='empty-state'" in response.text
    assert str(oncopipe_home) in response.text


def test_quality_history_table_highlights_failures_and_filters(client, oncopipe_home):
    _history(oncopipe_home / "quality" / "history.sqlite", [
        ("r1", "2024-01-31", "raw", "er_pha_f", "cip13_format", "critical", 0, "5.1% invalid"),
        ("r1", "2024-01-31", "raw", "ir_ben_r", "sex_value_set", "warning", 1, "0%"),
        ("r1", "2024-01-31", "marts", "cohort", "row_count", "critical", 1, "1200"),
    ])
    page = client.get("/quality").text
    assert page.count("<tr class='failed'>") == 2 and page.count("<tr class='passed'>") == 2
    assert "id='gate-runs'" in page
    assert "cip13_format" in page and "5.1% invalid" in page
    failed = client.get("/quality?failed=1").text
    assert "cip13_format" in failed and "sex_value_set" not in failed
    marts = client.get("/quality?stage=marts").text
    assert "row_count" in marts and "cip13_format" not in marts


def test_history_without_the_expected_table_is_a_clear_error(tmp_path):
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table other (x integer)")
    with pytest.raises(ValueError, match="history.sqlite: no table with 'expectation'"):
        read_history(path)


def test_static_sites_are_served_and_cannot_escape_their_folder(client, oncopipe_home):
    docs = oncopipe_home / "quality" / "data_docs"
    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html>GX site</html>")
    (docs / "validations" / "v1.html").write_text("<html>one validation</html>")
    (oncopipe_home / "secret.txt").write_text("do not serve")
    assert "GX site" in client.get("/data-docs/").text
    assert "one validation" in client.get("/data-docs/validations/v1.html").text
    assert client.get("/data-docs/%2e%2e/%2e%2e/secret.txt").status_code == 404
    redirect = client.get("/data-docs", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/data-docs/")


def test_dbt_docs_prefer_the_published_copy(client, oncopipe_home):
    target = oncopipe_home / "dbt" / "target"
    target.mkdir(parents=True)
    (target / "index.html").write_text("target docs")
    assert "target docs" in client.get("/dbt-docs/").text
    (oncopipe_home / "published").mkdir()
    (oncopipe_home / "published" / "CURRENT").write_text("2025-06-30_abcdef012345\n")
    published = oncopipe_home / "published" / "2025-06-30_abcdef012345" / "dbt_docs"
    published.mkdir(parents=True)
    (published / "static_index.html").write_text("published docs")
    assert "published docs" in client.get("/dbt-docs/").text


def test_exports_index_and_reports(client, oncopipe_home):
    run = oncopipe_home / "exports" / "tradhor" / "run1"
    run.mkdir(parents=True)
    (oncopipe_home / "exports" / "index.html").write_text("<a href='tradhor/run1/report.html'>report</a>")
    (run / "report.html").write_text("the report")
    assert "report.html" in client.get("/exports/").text
    assert client.get("/exports/tradhor/run1/report.html").text == "the report"



def test_quality_page_shows_the_ledger_of_excluded_lines(client, oncopipe_home):
    # The table as oncopipe.quality.history writes it (tests/unit/quality/test_exclusions.py reads it back).
    path = oncopipe_home / "quality" / "history.sqlite"
    _history(path, [])
    sample = '[{"ORG_CLE_NUM": "010350001", "DCT_ORD_NUM": 80187, "PRS_ORD_NUM": 1, "EXE_SOI_DTD": "2090-03-14"}]'
    with sqlite3.connect(path) as db:
        db.execute("create table excluded_lines (run_id text, extraction text, source text, rule text, "
                   "column_name text, lines integer, judged integer, share real, ceiling real, consequence text, "
                   "sample_keys text, time text)")
        db.executemany("insert into excluded_lines values (?,?,?,?,?,?,?,?,?,?,?,?)", [
            ("raw-1", "2024-07-01", "er_pha_f", "EXE_SOI_DTD.not_after_extraction", "EXE_SOI_DTD", 3, 1948,
             3 / 1948, 0.005, "excluded", sample, "t1"),
            ("raw-2", "2024-10-01", "er_pha_f", "PHA_ACT_QSN.plausible_boxes", "PHA_ACT_QSN", 13, 1948, 13 / 1948,
             0.005, "quarantined (over the ceiling)", "[]", "t2")])
    page = client.get("/quality").text
    start = page.index("id='excluded-lines'")
    ledger = page[start:page.index("</table>", start)]
    assert "EXE_SOI_DTD.not_after_extraction" in ledger and "80187" in ledger and "<td>3</td>" in ledger
    # Newest first; over the ceiling it is highlighted like a failure.
    assert ledger.index("plausible_boxes") < ledger.index("not_after_extraction")
    assert ledger.count("<tr class='failed'>") == 1 and ledger.count("<tr class='passed'>") == 1


def _gx_template_addresses() -> set[str]:
    """Every script, stylesheet and image address in the installed GX's Data Docs templates."""
    import importlib.util
    import re
    from pathlib import Path

    # Found, not imported: importing great_expectations takes 9 s here.
    templates = Path(importlib.util.find_spec("great_expectations").origin).parent / "render" / "view" / "templates"
    found = set()
    for template in templates.glob("*.j2"):
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", template.read_text(encoding="utf-8"), re.DOTALL):
            found.update(re.findall(r'(?:src|href)="(https://[^"{]+)"', tag))
    return found


def test_every_cdn_address_of_the_gx_templates_is_vendored():
    from oncopipe.orchestration.operator_views import CDN_ASSETS, WEB_ASSETS_DIR

    addresses = _gx_template_addresses()
    assert addresses, "no CDN address found: the templates moved"
    assert addresses <= set(CDN_ASSETS), sorted(addresses - set(CDN_ASSETS))
    for local in CDN_ASSETS.values():
        assert (WEB_ASSETS_DIR / local).stat().st_size > 200, local
    licences = {p.parent.name for p in WEB_ASSETS_DIR.glob("*/LICENSE*")}
    assert {local.split("/")[0] for local in CDN_ASSETS.values()} <= licences | set(
        (WEB_ASSETS_DIR / "LICENSES.md").read_text().split("`")), "a vendored package without its licence"


def test_data_docs_pages_are_served_offline(client, oncopipe_home):
    site = oncopipe_home / "quality" / "data_docs"
    site.mkdir(parents=True)
    page = ('<html><head><script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
            '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
            'integrity="sha384-x" crossorigin="anonymous"></script>'
            '<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">'
            '</head><body><img class="NO-CACHE" src="https://great-expectations-web-assets.s3.us-east-2.amazonaws'
            '.com/logo-long.png?d=1234"><a href="https://greatexpectations.io/">GX</a></body></html>')
    (site / "index.html").write_text(page)
    served = client.get("/data-docs/").text
    assert "https://" not in served.replace('href="https://greatexpectations.io/"', "")  # a link, not a load
    assert "integrity=" not in served and "amazonaws" not in served
    assert 'src="/oncopipe/web-assets/jquery@3.7.1/jquery.min.js"' in served
    for asset in ("jquery@3.7.1/jquery.min.js", "fontawesome-free@6.6.0/css/all.min.css",
                  "fontawesome-free@6.6.0/webfonts/fa-solid-900.woff2", "gx/logo-long.png"):
        assert client.get(f"/oncopipe/web-assets/{asset}".removeprefix("/oncopipe")).status_code == 200, asset
    assert client.get("/web-assets/../operator_views.py").status_code == 404
    (site / "other.html").write_text('<script src="https://evil.example/x.js"></script>')
    assert client.get("/data-docs/other.html").status_code == 500  # an address not vendored is refused


def test_dbt_docs_angular_image_bindings_are_deferred(client, oncopipe_home):
    from oncopipe.orchestration.operator_views import unbound_images_deferred

    page = ('<img src="{{ getIcon(item.type, \'on\') }}"><img src="logo.png">'
            '<svg class="icn"><use xlink:href="{{ getIcon(item.type, \'off\') }}"></use></svg>')
    assert unbound_images_deferred(page) == (
        '<img ng-src="{{ getIcon(item.type, \'on\') }}"><img src="logo.png">'
        '<svg class="icn"><use ng-attr-xlink:href="{{ getIcon(item.type, \'off\') }}"></use></svg>')
    docs = oncopipe_home / "dbt" / "target"
    docs.mkdir(parents=True)
    (docs / "static_index.html").write_text(page)
    served = client.get("/dbt-docs/").text
    assert ' src="{{' not in served and ' xlink:href="{{' not in served


SCRIPT = "<script>alert('x')</script>"


def test_values_from_the_history_are_escaped_on_the_quality_page(client, oncopipe_home):
    # A gate message, a sample value and an expectation name are data: a page must show them, not run them.
    path = oncopipe_home / "quality" / "history.sqlite"
    _history(path, [("r1", "2024-01-31", "raw", "er_pha_f", f"rule {SCRIPT}", "critical", 0, f"5% {SCRIPT}")])
    with sqlite3.connect(path) as db:
        db.execute("create table excluded_lines (run_id text, extraction text, source text, rule text, "
                   "column_name text, lines integer, judged integer, share real, ceiling real, consequence text, "
                   "sample_keys text, time text)")
        db.execute("insert into excluded_lines values (?,?,?,?,?,?,?,?,?,?,?,?)",
                   ("raw-1", "2024-07-01", "er_pha_f", "r", "c", 3, 10, 0.3, 0.5, "excluded",
                    f'[{{"PRS_NAT_REF": "{SCRIPT}"}}]', "t1"))
    for query in ("", f"?stage={SCRIPT}"):
        page = client.get(f"/quality{query}").text
        assert "<script" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") == 2, "the sample key and the stage filter (no history row matches it)"
    assert client.get("/quality").text.count("&lt;script&gt;") == 3, "expectation, observed value, sample key"


def test_quality_view_shows_source_freshness_errors_red_and_warnings_amber(client, oncopipe_home):
    path = oncopipe_home / "quality" / "history.sqlite"
    _history(path, [("r1", "2022-03-01", "raw", "er_pha_f", "cip13_format", "critical", 1, "0%")])
    assert "id='source-freshness-empty'" in client.get("/quality").text
    # The columns of oncopipe.quality.history's source_freshness (the integration test writes it through history).
    with sqlite3.connect(path) as db:
        db.execute("create table source_freshness (run_id text, extraction text, source text, status text, "
                   "failed integer, max_loaded_at text, snapshotted_at text, age_days real, warn_after text, "
                   "error_after text, message text, time text)")
        db.executemany("insert into source_freshness values ('inv-1', '2022-03-01', ?, ?, ?, ?, '2022-03-01', ?, ?, ?, "
                       "?, '2022-03-01T06:00:00Z')", [
                           ("pmsi_mco.t_mco_b", "error", 1, "2021-06-30", 244.0, "45 days", "120 days", None),
                           ("snds.er_pha_f", "warn", 0, "2021-12-31", 60.0, "45 days", "120 days", None),
                           ("snds.ir_ben_r", "pass", 0, "2021-12-31", 60.0, "400 days", None, None),
                           ("cepidc.ki_cci_r", "runtime error", 1, None, None, None, None, "no <table>")])
    page = client.get("/quality").text
    table = page[page.index("<table id='source-freshness'>"):]
    table = table[:table.index("</table>")]
    assert table.count("<tr class='failed'>") == 2 and table.count("<tr class='warned'>") == 1
    assert table.count("<tr class='passed'>") == 1
    assert "<th>failed</th>" not in table and "<th>age_days</th>" in table and "<th>error_after</th>" in table
    warned = table[table.index("<tr class='warned'>"):]
    assert "snds.er_pha_f" in warned[:warned.index("</tr>")] and "60.0" in warned[:warned.index("</tr>")]
    assert "no &lt;table&gt;" in table  # messages are escaped
    assert page.index("id='source-freshness'") < page.index("id='gate-runs'")
    # A later refresh's check replaces it on the view (one row a source: where each stands now); the earlier ones
    # are counted, not listed (a dozen rows a refresh pushed the gate results off the screen).
    with sqlite3.connect(path) as db:
        db.execute("insert into source_freshness values ('inv-2', '2022-06-01', 'snds.ir_ben_r', 'pass', 0, "
                   "'2022-06-01', '2022-06-01', 0.0, '400 days', null, null, '2022-06-01T06:00:00Z')")
    page = client.get("/quality").text
    table = page[page.index("<table id='source-freshness'>"):]
    table = table[:table.index("</table>")]
    assert table.count("<tr class=") == 1 and "2022-06-01" in table and "inv-1" not in table
    assert "1 earlier check" in page
