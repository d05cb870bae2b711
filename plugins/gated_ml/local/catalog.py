"""The Glue Data Catalog on this machine: a pipeline's curated table and its ``ds`` partitions.

Records live in the control plane (``_control/glue-tables/``, ``_control/glue-partitions/``),
created from the same ``CreateTable`` / ``CreatePartition`` requests the `aws` target sends.
As the `aws` target's operators do (``if_exists="skip"``), an existing table or partition is
kept as it is.
"""

from __future__ import annotations

from gated_ml.errors import ResourceNotFound
from gated_ml.local.control_plane import ControlPlane, now
from gated_ml.validation import validate_request


def create_partition(table_request: dict, partition_request: dict, control: ControlPlane | None = None) -> dict:
    """Create the table if it is missing, then the partition; answer like ``glue.GetPartition``."""
    validate_request("glue", "CreateTable", table_request)
    validate_request("glue", "CreatePartition", partition_request)
    control = control or ControlPlane()
    database, table = table_request["DatabaseName"], table_request["TableInput"]["Name"]
    if control.get("glue-tables", f"{database}.{table}") is None:
        control.put("glue-tables", f"{database}.{table}", {**table_request["TableInput"], "DatabaseName": database, "CreateTime": now()})
    if (partition_request["DatabaseName"], partition_request["TableName"]) != (database, table):
        raise ResourceNotFound(
            f"partition of {partition_request['DatabaseName']}.{partition_request['TableName']}: table {database}.{table} is the one created"
        )
    values = partition_request["PartitionInput"]["Values"]
    key = f"{database}.{table}." + "/".join(values)
    record = control.get("glue-partitions", key)
    if record is None:
        record = control.put(
            "glue-partitions", key, {**partition_request["PartitionInput"], "DatabaseName": database, "TableName": table, "CreationTime": now()}
        )
    return {"Partition": record}
