"""Start the Tuneloom web UI: parse flags, refuse unsafe exposure, build the page, launch.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--auth user:password | --auth FILE]

TUNELOOM_HOME picks the workspace (default ~/.tuneloom).
"""
from __future__ import annotations

import argparse
import os

from engine.core.security import ALLOW_USER_CODE, check_launch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tuneloom: fine-tune language models in the browser")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link (needs --auth)")
    parser.add_argument("--auth", default=None, help="user:password, or a file with one user:password per line")
    parser.add_argument("--allow-user-code", action="store_true",
                        help="let runs started from the page use your own Python reward files (GRPO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    users = check_launch(args.host, args.share, args.auth)  # raises SystemExit with the reason
    if args.allow_user_code:
        os.environ[ALLOW_USER_CODE] = "1"  # read by engine/core/security.py web_config_problems
    from ui.app import build_ui, launch_options
    from ui.status_routes import add_status_routes
    from ui.warm_cli import WARM

    WARM.warm_up_in_background()  # the data checks' engine process does its imports while the page loads
    demo = build_ui().queue(default_concurrency_limit=4)
    server, _, _ = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                               auth=users or None, prevent_thread_lock=True, **launch_options())
    add_status_routes(server)  # GET /tuneloom/runs/{id}/status: status reads outside Gradio's queue
    demo.block_thread()


if __name__ == "__main__":
    main()
