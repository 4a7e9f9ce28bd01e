"""``deploy/nginx.conf`` as shipped passes ``nginx -t`` once included in an ``http`` block."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.nginx_helpers import SHIPPED_SITE, check_config, main_config


def test_the_shipped_site_passes_nginx_t(tmp_path: Path) -> None:
    """Verbatim, as /etc/nginx/conf.d/lynkr.conf would include it."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_config(tmp_path, SHIPPED_SITE))

    checked = check_config(conf)

    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
    assert "test is successful" in checked.stderr

