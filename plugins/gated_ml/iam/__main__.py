"""``python -m gated_ml.iam --pipeline NAME --account ID [...] --out DIR``: write one pipeline's role documents."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    from gated_ml.iam.render import MWAA_SERVICES, IamEnvironment, render_roles
    from gated_ml.job_requests import XGBOOST_FRAMEWORK_VERSION
    from gated_ml.spec import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pipeline", required=True)
    ap.add_argument("--account", required=True, help="12-digit AWS account id")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--bucket", required=True, help="the lake bucket (Variable gated_ml_bucket)")
    ap.add_argument("--airflow-role", default="gated-ml-airflow", help="role name")
    ap.add_argument("--sagemaker-role", default="gated-ml-sagemaker", help="role name")
    ap.add_argument("--glue-role", default="gated-ml-glue", help="role name")
    ap.add_argument("--lake-kms-key", default=None, help="[gated_ml] kms_key_id, if the lake is SSE-KMS")
    ap.add_argument("--airflow-service", action="append", help=f"service principal that assumes the Airflow role (default: {', '.join(MWAA_SERVICES)})")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    from sagemaker.core import image_uris

    role = lambda name: f"arn:aws:iam::{args.account}:role/{name}"  # noqa: E731
    iam = IamEnvironment(
        account=args.account,
        region=args.region,
        bucket=args.bucket,
        airflow_role_arn=role(args.airflow_role),
        sagemaker_role_arn=role(args.sagemaker_role),
        glue_role_arn=role(args.glue_role),
        image_uri=image_uris.retrieve("xgboost", region=args.region, version=XGBOOST_FRAMEWORK_VERSION),
        lake_kms_key=args.lake_kms_key,
        airflow_services=tuple(args.airflow_service or MWAA_SERVICES),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for key, r in render_roles(load_pipeline(args.pipeline), iam).items():
        for kind, doc in (("trust", r.trust), ("policy", r.policy)):
            path = args.out / f"{args.pipeline}-{key}-{kind}.json"
            path.write_text(json.dumps(doc, indent=2) + "\n")
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
