"""IAM for the `aws` target: the three roles' policies rendered per pipeline, and the check that they suffice.

- :mod:`.arns`: the ARNs of what a pipeline touches (job-name patterns from :mod:`gated_ml.naming`,
  KMS keys, the image repository, subnets).
- :mod:`.render`: the templates of ``include/iam/`` filled in for one spec and one account.
- :mod:`.calls`: the calls of a run, from a moto recording, as (role, IAM action, resource ARN).
- :mod:`.check`: a real policy evaluator (moto's) over those calls, and the wildcard audit.

``python -m gated_ml.iam --pipeline NAME --account ID --out DIR`` writes the documents.
"""
