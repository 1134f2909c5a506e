"""book: the repository URL behind the Binder / repository buttons, and the generated config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nicspec_utils import book
from nicspec_utils.errors import UsageError

REPO = Path(__file__).resolve().parent.parent
ENV = book.REPOSITORY_ENV


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://github.com/org/nicspec", "https://github.com/org/nicspec"),
        ("https://github.com/org/nicspec.git", "https://github.com/org/nicspec"),
        ("https://github.com/org/nicspec/", "https://github.com/org/nicspec"),
        ("https://user:token@github.com/org/nicspec.git", "https://github.com/org/nicspec"),
        ("git@github.com:org/nicspec.git", "https://github.com/org/nicspec"),
        ("git@github.com:org/nicspec", "https://github.com/org/nicspec"),
        ("ssh://git@github.com/org/nicspec.git", "https://github.com/org/nicspec"),
        ("ssh://git@github.com:22/org/nicspec.git", "https://github.com/org/nicspec"),
        ("https://www.github.com/org/nicspec", "https://github.com/org/nicspec"),
        ("git@gitlab.com:group/nicspec.git", "https://gitlab.com/group/nicspec"),
        # not a public GitHub/GitLab repository: no buttons
        ("/srv/git/nicspec.git", None),
        ("../nicspec", None),
        ("file:///srv/git/nicspec.git", None),
        ("https://git.example.org/org/nicspec.git", None),
        ("git@example.org:org/nicspec.git", None),
        ("https://github.com/org", None),
        ("", None),
    ],
)
def test_normalise_remote_url(remote: str, expected: str | None) -> None:
    assert book.normalise_repository_url(remote) == expected


def test_explicit_url_may_name_any_host() -> None:
    url = book.normalise_repository_url("https://git.example.org/org/nicspec.git/", hosts=None)
    assert url == "https://git.example.org/org/nicspec"


def _git_repo(path: Path, remote: str | None) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "feature", str(path)], check=True)
    if remote is not None:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    return path


def test_env_var_wins_over_the_remote(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "r", "git@github.com:someone/fork.git")
    env = {ENV: "https://github.com/org/nicspec.git"}
    assert book.repository_url(env, cwd=repo) == "https://github.com/org/nicspec"
    # GitHub Actions: ${{ github.server_url }}/${{ github.repository }}
    env = {ENV: "https://github.com/org/nicspec"}
    assert book.repository_url(env, cwd=repo) == "https://github.com/org/nicspec"
    with pytest.raises(UsageError):
        book.repository_url({ENV: "not a url"}, cwd=repo)


def test_ssh_remote_becomes_https(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "r", "git@github.com:org/nicspec.git")
    assert book.repository_url({}, cwd=repo) == "https://github.com/org/nicspec"
    assert book.repository_url({ENV: "  "}, cwd=repo) == "https://github.com/org/nicspec"


def test_no_remote_no_url(tmp_path: Path) -> None:
    assert book.repository_url({}, cwd=_git_repo(tmp_path / "r", None)) is None
    assert book.repository_url({}, cwd=_git_repo(tmp_path / "local", "/srv/git/x.git")) is None
    not_git = tmp_path / "plain"
    not_git.mkdir()
    assert book.repository_url({}, cwd=not_git) is None


def test_branch(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "r", None)
    assert book.repository_branch({book.BRANCH_ENV: "gh-pages"}, cwd=repo) == "gh-pages"
    # an unborn branch has no HEAD commit: rev-parse fails, so the default
    assert book.repository_branch({}, cwd=repo) in ("feature", "main")
    not_git = tmp_path / "plain"
    not_git.mkdir()
    assert book.repository_branch({}, cwd=not_git) == "main"


def test_no_url_no_overlay_and_no_generated_config(tmp_path: Path) -> None:
    target = tmp_path / "gen.yml"
    target.write_text("stale")
    assert book.repository_overlay(None) == {}
    assert book.write_build_config(None, target=target) is None
    assert not target.exists()


def test_generated_config_adds_binder_and_keeps_the_rest(tmp_path: Path) -> None:
    target = tmp_path / "out" / "_config.generated.yml"
    path = book.write_build_config("https://github.com/org/nicspec", "main", target=target)
    assert path == target
    committed = yaml.safe_load(book.CONFIG_FILE.read_text())
    generated = yaml.safe_load(target.read_text())
    assert generated["repository"] == {
        "url": "https://github.com/org/nicspec",
        "branch": "main",
        "path_to_book": "",
    }
    assert generated["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert generated["launch_buttons"]["notebook_interface"] == "classic"
    assert generated["html"]["use_repository_button"] is True
    assert generated["html"]["use_issues_button"] is True
    # the committed settings are all still there
    assert generated["html"]["home_page_in_navbar"] == committed["html"]["home_page_in_navbar"]
    assert generated["sphinx"]["config"] == committed["sphinx"]["config"]
    assert generated["title"] == committed["title"]
    # local extensions resolve as from the repository root, wherever the copy lives
    ext = Path(generated["sphinx"]["local_extensions"]["nicspec_book"])
    assert ext.is_absolute() and (ext / "nicspec_book.py").is_file()
    # the committed config names no repository URL
    assert "repository" not in committed and "launch_buttons" not in committed


def test_jupyter_book_reads_the_generated_config(tmp_path: Path) -> None:
    """jupyter-book turns the generated file into sphinx-book-theme's repository options."""
    pytest.importorskip("jupyter_book")
    from jupyter_book.config import get_final_config

    target = tmp_path / "_config.generated.yml"
    book.write_build_config("https://github.com/org/nicspec", "main", target=target)
    added = list(sys.path)
    try:
        config, _ = get_final_config(
            user_yaml=target, cli_config={"latex_individualpages": False}, sourcedir=REPO
        )
    finally:
        sys.path[:] = added
    theme = config["html_theme_options"]
    assert theme["repository_url"] == "https://github.com/org/nicspec"
    assert theme["repository_branch"] == "main"
    assert theme["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert theme["use_repository_button"] is True
    assert config["mathjax_path"] == "mathjax/es5/tex-mml-chtml.js"


def test_launch_links_point_at_the_paired_notebooks() -> None:
    pytest.importorskip("sphinx")
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import nicspec_book
    finally:
        sys.path.remove(str(REPO / "book" / "_ext"))
    binder = (
        "https://mybinder.org/v2/gh/org/nicspec/main"
        "?urlpath=tree/book/chapters/01_corruption_benchmark.ipynb"
    )
    context = {
        "header_buttons": [
            {"type": "group", "label": "download-buttons", "buttons": [
                {"type": "link", "url": "../../_sources/book/chapters/01.ipynb"}]},
            {"type": "group", "label": "launch-buttons", "buttons": [
                {"type": "link", "text": "Binder", "url": binder}]},
        ]
    }  # fmt: skip
    nicspec_book.launch_from_notebooks(None, "book/chapters/01_x", "page.html", context, None)
    launch = context["header_buttons"][1]["buttons"][0]["url"]
    assert launch.endswith("?urlpath=tree/notebooks/01_corruption_benchmark.ipynb")
    download = context["header_buttons"][0]["buttons"][0]["url"]
    assert download == "../../_sources/book/chapters/01.ipynb"  # downloads are untouched


def test_models_page_lists_elic_as_not_available() -> None:
    """The models page's table has a 'not available' row, with as many cells as the header, for
    every ELIC recipe without a checkpoint, and says why and how to train them."""
    pytest.importorskip("sphinx")
    from nicspec_utils.nic.modelcard import not_available

    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import nicspec_book
    finally:
        sys.path.remove(str(REPO / "book" / "_ext"))
    missing = not_available()
    if not missing:
        pytest.skip("every ELIC model is shipped")
    text, _ = nicspec_book.models_markdown(REPO)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    for row in missing:
        (line,) = [line for line in lines if line.startswith(f"| `{row['model']}` |")]
        assert "| not available |" in line and line.count("|") == header.count("|")
    assert "**Not available**" in text and "NICSPEC_FAMILY=elic" in text


def test_binder_files() -> None:
    """environment.yml installs the package (editable, repo2docker sees it as local) with CPU
    torch; postBuild pairs the text notebooks that the launch buttons open."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip  # no inner quotes: repo2docker's local-requirement check
    assert any("download.pytorch.org/whl/cpu" in line for line in pip)
    assert any(line.startswith("torch") for line in pip)
    post = REPO / "postBuild"
    assert post.is_file() and post.stat().st_mode & 0o111
    assert "jupytext --to ipynb" in post.read_text()


def test_provenance_goes_under_the_title(tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 9. A chapter"), nbformat.v4.new_code_cell("1")]
    path = tmp_path / "c.ipynb"
    nbformat.write(nb, path)
    line = book.provenance("smoke")
    assert "**smoke** profile" in line and "CPUs" in line
    book.add_provenance(path, line)
    book.add_provenance(path, line)  # a rebuild replaces it, never stacks
    cells = nbformat.read(path, as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "markdown", "code"]
    assert cells[1].source == line


def test_the_downloads_hold_the_profiles_records_and_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from nicspec_utils import book, ledger
    from nicspec_utils.bundle import uses_log
    from nicspec_utils.engines.evaluate import evaluate

    monkeypatch.setenv("NICSPEC_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("NICSPEC_FRESH", "1")  # the store alone, no committed bundle
    path = evaluate("none", "kodak", ["kodim01"], progress=False, maps=False)
    key = path.parent.name
    log = uses_log("smoke", "02_rate_distortion")
    log.parent.mkdir(parents=True)
    log.write_text(key + "\n")
    checks = pd.DataFrame([{"claim": "2", "verdict": "inconclusive", "effect": 0.1,
                            "ci_low": -0.2, "ci_high": 0.4}])  # fmt: skip
    ledger.publish("02_rate_distortion", checks, profile="smoke")
    rows = book.write_downloads("smoke", tmp_path / "downloads")
    assert rows == {"records.csv": 1, "claims.csv": 1}
    records = pd.read_csv(tmp_path / "downloads" / "records.csv")
    assert list(records["key"]) == [key] and list(records["image_id"]) == ["kodim01"]
    claims = pd.read_csv(tmp_path / "downloads" / "claims.csv")
    assert list(claims["verdict"]) == ["inconclusive"] and claims["interval"][0] == "[-0.2, +0.4]"
    # a profile no chapter ran under: empty tables, still written
    assert book.write_downloads("paper", tmp_path / "none") == {"records.csv": 0, "claims.csv": 0}
    assert (tmp_path / "none" / "records.csv").read_text().startswith("key,image_id")


def _extension() -> object:
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import nicspec_book
    finally:
        sys.path.remove(str(REPO / "book" / "_ext"))
    return nicspec_book


def test_models_table_puts_the_numbers_beside_the_name() -> None:
    """The models page's Kodak numbers (bpp, PSNR, MS-SSIM) come right after the model's name,
    so a narrow page shows them without scrolling."""
    pytest.importorskip("sphinx")
    ext = _extension()
    assert ext.MODEL_COLUMNS[:5] == ("model", "Kodak at", "bpp", "PSNR (dB)", "MS-SSIM")
    kodak = {"default": {"bpp": 0.5, "psnr": 30.0, "ms_ssim": 0.95}}
    info = {"architecture": "a", "metric": "mse", "lmbda": 0.01, "steps": 5, "bytes": 2e6,
            "kodak_real_coding": kodak}  # fmt: skip
    (row,) = ext._rows("m", info)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["`m`", "–", "0.500", "30.00", "0.9500"]
    assert len(cells) == len(ext.MODEL_COLUMNS)
    (bare,) = ext._rows("m", {"metric": "mse"})
    assert len(bare.strip("|").split("|")) == len(ext.MODEL_COLUMNS)


def test_wide_figures_get_the_full_width_and_every_figure_a_full_resolution_link(
    tmp_path: Path,
) -> None:
    """A tiny Sphinx + myst-nb build of a notebook with a wide and a narrow figure: both link to
    their image in _images/, only the wide one's cell is full-width; a wide ``figure`` directive
    of a text page is full-width and linked too."""
    pytest.importorskip("myst_nb")
    import base64
    import io

    import nbformat
    from PIL import Image
    from sphinx.application import Sphinx

    def png(width: int) -> str:
        buf = io.BytesIO()
        Image.new("RGB", (width, 40), "white").save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Page")]
    for width in (1400, 300):
        cell = nbformat.v4.new_code_cell(f"fig{width}")
        cell.outputs = [nbformat.v4.new_output("display_data", {"image/png": png(width)})]
        nb.cells.append(cell)
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(nb, src / "index.ipynb")
    (src / "wide.png").write_bytes(base64.b64decode(png(1200)))
    (src / "page.md").write_text("# Text\n\n```{figure} wide.png\nA wide figure.\n```\n")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / 'book' / '_ext')!r})\n"
        "extensions = ['myst_nb', 'nicspec_book']\nnb_execution_mode = 'off'\n"
    )
    out = tmp_path / "html"
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                 status=None, warning=None, freshenv=True)  # fmt: skip
    app.build()
    html = (out / "index.html").read_text()
    links = re.findall(r'<a class="[^"]*nicspec-fullres[^"]*" href="([^"]+)"', html)
    assert len(links) == 2 and all(h.startswith("_images/") for h in links), links
    assert all((out / h).is_file() for h in links)
    cells = re.findall(r'<div class="cell ([^"]*)"', html)
    assert len(cells) == 2
    assert "tag_full-width" in cells[0] and "tag_full-width" not in cells[1]
    assert len(re.findall(r'<img[^>]*class="[^"]*nicspec-wide', html)) == 1
    page = (out / "page.html").read_text()  # a figure directive in a page's text
    assert re.search(r'<figure class="[^"]*nicspec-full-width', page)
    assert re.search(r'<a class="[^"]*nicspec-fullres[^"]*" href="_images/wide.png"', page)


def test_the_default_profile_is_paper_once_its_bundle_is_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make book and the published site (_build/html) take the paper profile when
    data/results/paper holds a complete bundle (every chapter), else quick; other profiles
    get _build/html-<name>."""
    from nicspec_utils import store

    monkeypatch.setattr(store, "bundles_root", lambda: tmp_path)
    assert book.default_profile() == "quick"
    assert book.site_dir("quick").name == "html" and book.site_dir("paper").name == "html-paper"
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / store.BUNDLE_MANIFEST).write_text("{}")
    assert book.default_profile() == "quick"  # no word on its chapters
    (tmp_path / "paper" / store.BUNDLE_MANIFEST).write_text('{"complete": false}')
    assert book.default_profile() == "quick"  # assembled chapter by chapter, not yet whole
    (tmp_path / "paper" / store.BUNDLE_MANIFEST).write_text('{"complete": true}')
    assert book.default_profile() == "paper"
    assert book.site_dir("paper").name == "html" and book.site_dir("quick").name == "html-quick"
