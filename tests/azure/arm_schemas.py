"""Writes JSON Schemas for the ARM request bodies ferry sends, derived from Microsoft's
autorest-generated Python models (PyPI azure-mgmt-*), which are generated from the public
Azure REST API specifications (github.com/Azure/azure-rest-api-specs).

Usage: python arm_schemas.py OUT.json

Each model's `_attribute_map` gives the wire names and types (dotted keys such as
`properties.serverFarmId` are autorest's flattening and are nested back here), `_validation`
the required, read-only and range constraints, and `_subtype_map` the discriminated subtypes.
Every object is closed (`additionalProperties: false`) unless the model declares additional
properties, so a misspelled or misplaced key is an error, as it is not for ARM (which ignores
unknown keys silently). Read-only properties are allowed (ARM ignores them on PUT) but a
`$readOnly` list marks them. What the models do not carry, these schemas do not check: enum
values (autorest types them as plain strings) and cross-field rules the services enforce.

The output maps `<resource type>@<api version>` to a draft-07 schema whose `definitions` hold
every model it uses.
"""

import importlib
import json
import sys

# resource type, api version, models module, body model
RESOURCES = [
    ("Microsoft.Resources/resourceGroups", "2025-04-01", "azure.mgmt.resource.resources.v2025_04_01.models", "ResourceGroup"),
    ("Microsoft.Storage/storageAccounts", "2025-06-01", "azure.mgmt.storage.models", "StorageAccountCreateParameters"),
    ("Microsoft.Storage/storageAccounts/blobServices/containers", "2025-06-01", "azure.mgmt.storage.models", "BlobContainer"),
    ("Microsoft.Storage/storageAccounts/queueServices/queues", "2025-06-01", "azure.mgmt.storage.models", "StorageQueue"),
    ("Microsoft.Storage/storageAccounts/tableServices/tables", "2025-06-01", "azure.mgmt.storage.models", "Table"),
    ("Microsoft.Web/serverfarms", "2024-11-01", "azure.mgmt.web.models", "AppServicePlan"),
    ("Microsoft.Web/sites", "2024-11-01", "azure.mgmt.web.models", "Site"),
    ("Microsoft.Web/sites/config", "2024-11-01", "azure.mgmt.web.models", "StringDictionary"),
    ("Microsoft.KeyVault/vaults", "2025-05-01", "azure.mgmt.keyvault.models", "VaultCreateOrUpdateParameters"),
    ("Microsoft.KeyVault/vaults/secrets", "2025-05-01", "azure.mgmt.keyvault.models", "SecretCreateOrUpdateParameters"),
    ("Microsoft.Insights/components", "2020-02-02", "azure.mgmt.applicationinsights.v2020_02_02.models", "ApplicationInsightsComponent"),
    ("Microsoft.OperationalInsights/workspaces", "2021-06-01", "azure.mgmt.loganalytics.models", "Workspace"),
    ("Microsoft.EventGrid/topics", "2025-02-15", "azure.mgmt.eventgrid.models", "Topic"),
    ("Microsoft.EventGrid/systemTopics", "2025-02-15", "azure.mgmt.eventgrid.models", "SystemTopic"),
    ("Microsoft.EventGrid/topics/eventSubscriptions", "2025-02-15", "azure.mgmt.eventgrid.models", "EventSubscription"),
    ("Microsoft.EventGrid/systemTopics/eventSubscriptions", "2025-02-15", "azure.mgmt.eventgrid.models", "EventSubscription"),
    ("Microsoft.Authorization/roleAssignments", "2022-04-01", "azure.mgmt.authorization.v2022_04_01.models", "RoleAssignmentCreateParameters"),
]

PRIMITIVES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "long": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "iso-8601": {"type": "string"},
    "rfc-1123": {"type": "string"},
    "duration": {"type": "string"},
    "date": {"type": "string"},
    "time": {"type": "string"},
    "unix-time": {"type": "integer"},
    "bytearray": {"type": "string"},
    "base64": {"type": "string"},
    "object": {},
}


def split_key(key):
    """autorest's flattened keys: `properties.a\\.b` is properties → `a.b`."""
    parts, cur, i = [], "", 0
    while i < len(key):
        if key[i] == "\\" and i + 1 < len(key) and key[i + 1] == ".":
            cur += "."
            i += 2
            continue
        if key[i] == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += key[i]
        i += 1
    parts.append(cur)
    return parts


class Builder:
    def __init__(self, module):
        self.module = module
        self.definitions = {}

    def type_schema(self, t):
        if t in PRIMITIVES:
            return dict(PRIMITIVES[t])
        if t.startswith("[") and t.endswith("]"):
            return {"type": "array", "items": self.type_schema(t[1:-1])}
        if t.startswith("{") and t.endswith("}"):
            return {"type": "object", "additionalProperties": self.type_schema(t[1:-1])}
        cls = getattr(self.module, t, None)
        if cls is None or not hasattr(cls, "_attribute_map"):
            # An enum or a type the module does not export: a string on the wire.
            return {"type": "string"}
        return self.model(cls)

    def model(self, cls):
        name = cls.__name__
        ref = {"$ref": f"#/definitions/{name}"}
        if name in self.definitions:
            return ref
        self.definitions[name] = {}  # placeholder against recursion
        self.definitions[name] = self.object_schema(cls)
        return ref

    def object_schema(self, cls):
        attrs = getattr(cls, "_attribute_map", {})
        validation = getattr(cls, "_validation", {})
        root = {"type": "object", "properties": {}, "additionalProperties": False}
        readonly = []
        for py_name, spec in attrs.items():
            key, t = spec["key"], spec["type"]
            if key == "":
                # `additional_properties`: the model is open.
                root["additionalProperties"] = self.type_schema(t[1:-1]) if t.startswith("{") else True
                continue
            schema = self.type_schema(t)
            v = validation.get(py_name, {})
            for src, dst in (
                ("max_length", "maxLength"),
                ("min_length", "minLength"),
                ("pattern", "pattern"),
                ("maximum", "maximum"),
                ("minimum", "minimum"),
                ("max_items", "maxItems"),
                ("min_items", "minItems"),
            ):
                if src in v:
                    schema[dst] = v[src]
            if v.get("constant") and hasattr(cls, py_name):
                schema["const"] = getattr(cls, py_name)
            parts = split_key(key)
            node = root
            for p in parts[:-1]:
                node = node["properties"].setdefault(
                    p, {"type": "object", "properties": {}, "additionalProperties": False}
                )
            node["properties"][parts[-1]] = schema
            if v.get("required") and not v.get("readonly"):
                node.setdefault("required", []).append(parts[-1])
            if v.get("readonly"):
                readonly.append(key)
        if readonly:
            root["$readOnly"] = readonly
        # Only the class that declares the map dispatches; subclasses inherit the attribute.
        subtypes = cls.__dict__.get("_subtype_map")
        if subtypes:
            (disc_py, mapping), = subtypes.items()
            disc = attrs[disc_py]["key"]
            branches = []
            for value, sub_name in sorted(mapping.items()):
                sub = getattr(self.module, sub_name)
                branches.append(
                    {
                        "if": {"properties": {disc: {"const": value}}, "required": [disc]},
                        "then": self.model(sub),
                    }
                )
            # The base's own properties still constrain; each subtype closes the object.
            root = {"allOf": [{k: v for k, v in root.items() if k != "additionalProperties"}] + branches}
        return root


def schema_for(module_name, model):
    module = importlib.import_module(module_name)
    b = Builder(module)
    top = b.model(getattr(module, model))
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "allOf": [top],
        "definitions": b.definitions,
    }


def main():
    out = {}
    for rtype, api, module, model in RESOURCES:
        out[f"{rtype}@{api}"] = schema_for(module, model)
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
