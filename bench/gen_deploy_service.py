"""Writes the service bench/deploy.sh deploys: N node functions, each with an http route, its
own queue (a queue trigger) and a schedule.

    python3 gen_deploy_service.py DIR N
"""

import os
import sys


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    lines = [
        "service: deploybench",
        "provider:",
        "  runtime: nodejs22",
        "  memory: 128",
        "services:",
    ]
    for i in range(n):
        lines.append(f"  q{i}: {{ type: queue }}")
    lines.append("functions:")
    for i in range(n):
        lines += [
            f"  f{i}:",
            "    handler: handler.main",
            "    triggers:",
            f"      - http: GET /f{i}",
            f"      - queue: q{i}",
            f"      - schedule: rate({i + 2} minutes)",
        ]
    lines.append("package:")
    lines.append('  include: ["handler.js"]')
    with open(os.path.join(out, "serverless.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "handler.js"), "w") as f:
        f.write("exports.main = async () => ({ statusCode: 200, body: 'ok' });\n")


if __name__ == "__main__":
    main()
