//! The CloudFormation template equivalent to the direct deploy: the same names, policies,
//! triggers and tags, for people who deploy with CloudFormation or SAM. Function code comes
//! from S3: upload the zips of `ferry package` under `<service>/<stage>/` in a bucket and pass
//! it as the `ArtifactBucket` parameter. Secret values are never written; set them after the
//! stack is made. Serverless Framework `resources:` are merged in as they are.

use crate::compile::{
    assume_role_policy, base_tags, lambda_arch, lambda_handler, lambda_runtime, route_key,
    s3_events, use_grant, Names, QUEUE_TRIGGER_ACTIONS, STORAGE_TRIGGER_ACTIONS,
};
use ferry_core::model::{
    injected_env_name, Dialect, EnvValue, PayloadVersion, ResourceKind, Service, Trigger,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A CloudFormation logical id for a name: its alphanumeric words in PascalCase
/// (`job-events` → `JobEvents`).
pub fn logical(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

fn tag_map(tags: &BTreeMap<String, String>) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn get_att(id: &str, attr: &str) -> Value {
    json!({"Fn::GetAtt": [id, attr]})
}

fn r#ref(id: &str) -> Value {
    json!({"Ref": id})
}

/// Serverless Framework's logical id of a function (`hello-world` → `HelloDashworldLambdaFunction`),
/// used for files in that dialect so that their `resources:` can refer to it.
pub fn sf_function_id(name: &str) -> String {
    format!(
        "{}LambdaFunction",
        upper_first(&name.replace('-', "Dash").replace('_', "Underscore"))
    )
}

/// Serverless Framework's logical id of a bucket made for an `s3` event (`S3BucketPhotos`).
pub fn sf_bucket_id(name: &str) -> String {
    let alnum: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("S3Bucket{}", upper_first(&alnum))
}

fn upper_first(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
        None => String::new(),
    }
}

/// Logical ids, unique within the template.
struct Ids {
    used: BTreeMap<String, String>,
}

impl Ids {
    fn id(&mut self, key: &str, base: String) -> String {
        if let Some(id) = self.used.get(key) {
            return id.clone();
        }
        let mut id = base.clone();
        let mut n = 2;
        while self.used.values().any(|v| v == &id) {
            id = format!("{base}{n}");
            n += 1;
        }
        self.used.insert(key.to_owned(), id.clone());
        id
    }
}

/// Builds the template. `artifacts` maps function names to their zip's path relative to the
/// package folder. Returns the template and notes for the user.
pub fn template(service: &Service, artifacts: &BTreeMap<String, String>) -> (Value, Vec<String>) {
    let names = Names::new(service);
    let tags = base_tags(service);
    let mut notes = Vec::new();
    let mut ids = Ids {
        used: BTreeMap::new(),
    };
    let mut res = Map::new();
    let mut outputs = Map::new();
    let sf = service.dialect == Dialect::ServerlessV3;

    // Services: the logical id, and how to refer to their ARN and injected value.
    let mut svc_arn: BTreeMap<String, Value> = BTreeMap::new();
    let mut svc_value: BTreeMap<String, Value> = BTreeMap::new();
    for (name, r) in &service.services {
        if let Some(ext) = &r.external {
            let arn = match (ext, &r.kind) {
                (Value::String(s), ResourceKind::Bucket { .. }) if !s.starts_with("arn:") => {
                    json!(format!("arn:aws:s3:::{s}"))
                }
                _ => ext.clone(),
            };
            let value = match (&r.kind, ext) {
                (ResourceKind::Bucket { .. }, Value::String(s)) => {
                    json!(s.rsplit(':').next().unwrap_or(s))
                }
                (ResourceKind::Queue { .. }, Value::String(s)) if s.starts_with("arn:") => {
                    let p: Vec<&str> = s.splitn(6, ':').collect();
                    json!(format!(
                        "https://sqs.{}.amazonaws.com/{}/{}",
                        p.get(3).unwrap_or(&""),
                        p.get(4).unwrap_or(&""),
                        p.get(5).unwrap_or(&"")
                    ))
                }
                _ => ext.clone(),
            };
            svc_arn.insert(name.clone(), arn);
            svc_value.insert(name.clone(), value);
            continue;
        }
        let base = logical(name);
        match &r.kind {
            ResourceKind::Queue {
                visibility_timeout,
                max_receives,
                fifo,
            } => {
                let id = ids.id(&format!("queue.{name}"), format!("{base}Queue"));
                let mut props = json!({
                    "QueueName": names.queue(name, *fifo),
                    "VisibilityTimeout": visibility_timeout,
                    "Tags": tag_list(&tags),
                });
                if *fifo {
                    props["FifoQueue"] = json!(true);
                }
                if let Some(max) = max_receives {
                    let dlq = ids.id(&format!("dlq.{name}"), format!("{base}DeadLetterQueue"));
                    let mut dprops = json!({
                        "QueueName": names.dlq(name, *fifo),
                        "MessageRetentionPeriod": 1_209_600,
                        "Tags": tag_list(&tags),
                    });
                    if *fifo {
                        dprops["FifoQueue"] = json!(true);
                    }
                    res.insert(
                        dlq.clone(),
                        json!({"Type": "AWS::SQS::Queue", "Properties": dprops}),
                    );
                    props["RedrivePolicy"] = json!({"deadLetterTargetArn": get_att(&dlq, "Arn"), "maxReceiveCount": max});
                }
                res.insert(
                    id.clone(),
                    json!({"Type": "AWS::SQS::Queue", "Properties": props}),
                );
                outputs.insert(
                    format!("{id}Url"),
                    json!({"Description": format!("URL of the queue `{name}`"), "Value": r#ref(&id)}),
                );
                svc_arn.insert(name.clone(), get_att(&id, "Arn"));
                svc_value.insert(name.clone(), r#ref(&id));
            }
            ResourceKind::Bucket { versioning } => {
                let id = ids.id(
                    &format!("bucket.{name}"),
                    if sf {
                        sf_bucket_id(name)
                    } else {
                        format!("{base}Bucket")
                    },
                );
                let bucket = names.bucket(name);
                let mut props = json!({"BucketName": bucket, "Tags": tag_list(&tags)});
                if *versioning {
                    props["VersioningConfiguration"] = json!({"Status": "Enabled"});
                }
                res.insert(
                    id.clone(),
                    json!({"Type": "AWS::S3::Bucket", "Properties": props}),
                );
                // The ARN from the name, not GetAtt: the bucket's notification configuration
                // depends on the permissions that name it, which would otherwise be a cycle.
                svc_arn.insert(
                    name.clone(),
                    json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:s3:::{bucket}")}),
                );
                svc_value.insert(name.clone(), r#ref(&id));
            }
            ResourceKind::Table { partition, sort } => {
                let id = ids.id(&format!("table.{name}"), format!("{base}Table"));
                let mut defs = vec![json!({"AttributeName": partition, "AttributeType": "S"})];
                let mut keys = vec![json!({"AttributeName": partition, "KeyType": "HASH"})];
                if let Some(s) = sort {
                    defs.push(json!({"AttributeName": s, "AttributeType": "S"}));
                    keys.push(json!({"AttributeName": s, "KeyType": "RANGE"}));
                }
                res.insert(
                    id.clone(),
                    json!({"Type": "AWS::DynamoDB::Table", "Properties": {
                        "TableName": names.table(name),
                        "BillingMode": "PAY_PER_REQUEST",
                        "AttributeDefinitions": defs,
                        "KeySchema": keys,
                        "Tags": tag_list(&tags),
                    }}),
                );
                svc_arn.insert(name.clone(), get_att(&id, "Arn"));
                svc_value.insert(name.clone(), r#ref(&id));
            }
            ResourceKind::Topic { fifo } => {
                let id = ids.id(&format!("topic.{name}"), format!("{base}Topic"));
                let mut props =
                    json!({"TopicName": names.topic(name, *fifo), "Tags": tag_list(&tags)});
                if *fifo {
                    props["FifoTopic"] = json!(true);
                }
                res.insert(
                    id.clone(),
                    json!({"Type": "AWS::SNS::Topic", "Properties": props}),
                );
                svc_arn.insert(name.clone(), r#ref(&id));
                svc_value.insert(name.clone(), r#ref(&id));
            }
            ResourceKind::Secret { description } => {
                let id = ids.id(&format!("secret.{name}"), format!("{base}Secret"));
                let mut props = json!({"Name": names.secret(name), "Tags": tag_list(&tags)});
                if let Some(d) = description {
                    props["Description"] = json!(d);
                }
                res.insert(
                    id.clone(),
                    json!({"Type": "AWS::SecretsManager::Secret", "Properties": props}),
                );
                notes.push(format!(
                    "the template creates the secret `{name}` without a value; set it with `aws secretsmanager put-secret-value --secret-id {}`",
                    names.secret(name)
                ));
                svc_arn.insert(name.clone(), r#ref(&id));
                svc_value.insert(name.clone(), r#ref(&id));
            }
        }
    }

    let mut notifications: BTreeMap<String, (Vec<Value>, Vec<String>)> = BTreeMap::new();
    let mut any_cors = false;
    let mut http = false;
    for (fname, f) in &service.functions {
        let base = logical(fname);
        let fid = ids.id(
            &format!("function.{fname}"),
            if sf {
                sf_function_id(fname)
            } else {
                format!("{base}Function")
            },
        );
        let rid = ids.id(&format!("role.{fname}"), format!("{base}Role"));
        let fnname = names.function(fname);
        let mut ftags = tags.clone();
        ftags.extend(f.tags.clone());

        // Policy, as in the direct deploy.
        let mut st = vec![json!({
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                {"Fn::Sub": format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{fnname}")},
                {"Fn::Sub": format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{fnname}:*")},
            ],
        })];
        let sub_arn = |arn: &Value, suffix: &str| json!({"Fn::Join": ["", [arn, suffix]]});
        for u in &f.uses {
            let Some(r) = service.services.get(u) else {
                continue;
            };
            let (actions, suffixes) = use_grant(&r.kind);
            let resources: Vec<Value> = suffixes
                .iter()
                .map(|sfx| {
                    if sfx.is_empty() {
                        svc_arn[u].clone()
                    } else {
                        sub_arn(&svc_arn[u], sfx)
                    }
                })
                .collect();
            st.push(json!({"Effect": "Allow", "Action": actions, "Resource": resources}));
        }
        for t in &f.triggers {
            match t {
                Trigger::Queue { queue, .. } => st.push(json!({
                    "Effect": "Allow",
                    "Action": QUEUE_TRIGGER_ACTIONS,
                    "Resource": [svc_arn[queue].clone()],
                })),
                Trigger::Storage { bucket, .. } => st.push(json!({
                    "Effect": "Allow",
                    "Action": STORAGE_TRIGGER_ACTIONS,
                    "Resource": [sub_arn(&svc_arn[bucket], "/*")],
                })),
                _ => {}
            }
        }
        st.extend(service.iam_statements.iter().cloned());
        let mut seen = std::collections::BTreeSet::new();
        st.retain(|s| seen.insert(s.to_string()));
        res.insert(
            rid.clone(),
            json!({"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": assume_role_policy(),
                "Policies": [{"PolicyName": "ferry", "PolicyDocument": {"Version": "2012-10-17", "Statement": st}}],
                "Tags": tag_list(&ftags),
            }}),
        );

        let mut env = Map::new();
        for u in &f.uses {
            if let Some(r) = service.services.get(u) {
                env.insert(injected_env_name(u, &r.kind), svc_value[u].clone());
            }
        }
        for (k, v) in &f.environment {
            env.insert(
                k.clone(),
                match v {
                    EnvValue::Text(t) => json!(t),
                    EnvValue::Expr(e) => e.clone(),
                },
            );
        }
        let key = artifacts
            .get(fname)
            .map(|p| format!("{}/{}/{p}", service.service, service.stage))
            .unwrap_or_else(|| format!("{}/{}/{fname}.zip", service.service, service.stage));
        let mut props = json!({
            "FunctionName": fnname,
            "Runtime": lambda_runtime(&f.runtime),
            "Handler": lambda_handler(f),
            "MemorySize": f.memory,
            "Timeout": f.timeout,
            "Architectures": [lambda_arch(f.architecture)],
            "Role": get_att(&rid, "Arn"),
            "Code": {"S3Bucket": r#ref("ArtifactBucket"), "S3Key": key},
            "Tags": tag_list(&ftags),
        });
        if let Some(a) = &f.package.artifact {
            notes.push(format!(
                "function `{fname}` deploys the prebuilt `{a}`; upload it as {key}"
            ));
        }
        if !env.is_empty() {
            props["Environment"] = json!({"Variables": env});
        }
        if let Some(d) = &f.description {
            props["Description"] = json!(d);
        }
        res.insert(
            fid.clone(),
            json!({"Type": "AWS::Lambda::Function", "Properties": props}),
        );
        let permission =
            |res: &mut Map<String, Value>, id: String, principal: &str, source: Value| {
                res.insert(
                    id,
                    json!({"Type": "AWS::Lambda::Permission", "Properties": {
                        "Action": "lambda:InvokeFunction",
                        "FunctionName": r#ref(&fid),
                        "Principal": principal,
                        "SourceArn": source,
                    }}),
                );
            };

        let mut payload = None;
        let mut n_sched = 0;
        for t in &f.triggers {
            match t {
                Trigger::Http(h) => {
                    http = true;
                    any_cors |= h.cors;
                    payload.get_or_insert(h.payload);
                    let key = route_key(&h.method, &h.path);
                    let id = ids.id(
                        &format!("route.{key}"),
                        format!("{base}Route{}", logical(&key)),
                    );
                    let iid = format!("{base}Integration");
                    res.insert(
                        id,
                        json!({"Type": "AWS::ApiGatewayV2::Route", "Properties": {
                            "ApiId": r#ref("HttpApi"),
                            "RouteKey": key,
                            "Target": {"Fn::Join": ["/", ["integrations", r#ref(&iid)]]},
                        }}),
                    );
                }
                Trigger::Queue {
                    queue,
                    batch_size,
                    batch_window,
                } => {
                    let id = ids.id(
                        &format!("mapping.{fname}.{queue}"),
                        format!("{base}{}EventSourceMapping", logical(queue)),
                    );
                    let mut props = json!({
                        "FunctionName": r#ref(&fid),
                        "EventSourceArn": svc_arn[queue].clone(),
                        "BatchSize": batch_size,
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    });
                    if let Some(w) = batch_window {
                        props["MaximumBatchingWindowInSeconds"] = json!(w);
                    }
                    // The role must allow sqs:ReceiveMessage before the mapping is made.
                    res.insert(
                        id,
                        json!({"Type": "AWS::Lambda::EventSourceMapping", "DependsOn": [rid], "Properties": props}),
                    );
                }
                Trigger::Schedule {
                    expression,
                    enabled,
                    input,
                } => {
                    n_sched += 1;
                    let id = ids.id(
                        &format!("schedule.{fname}.{n_sched}"),
                        format!("{base}Schedule{n_sched}"),
                    );
                    let mut target = json!({"Id": "ferry", "Arn": get_att(&fid, "Arn")});
                    if let Some(i) = input {
                        target["Input"] = json!(i.to_string());
                    }
                    res.insert(
                        id.clone(),
                        json!({"Type": "AWS::Events::Rule", "Properties": {
                            "Name": names.rule(fname, n_sched),
                            "ScheduleExpression": expression,
                            "State": if *enabled { "ENABLED" } else { "DISABLED" },
                            "Targets": [target],
                        }}),
                    );
                    permission(
                        &mut res,
                        format!("{id}Permission"),
                        "events.amazonaws.com",
                        get_att(&id, "Arn"),
                    );
                }
                Trigger::Storage {
                    bucket,
                    events,
                    prefix,
                    suffix,
                } => {
                    let pid = ids.id(
                        &format!("permission.{fname}.storage-{bucket}"),
                        format!("{base}{}BucketPermission", logical(bucket)),
                    );
                    permission(
                        &mut res,
                        pid.clone(),
                        "s3.amazonaws.com",
                        svc_arn[bucket].clone(),
                    );
                    let entry = notifications.entry(bucket.clone()).or_default();
                    let mut rules = Vec::new();
                    if let Some(p) = prefix {
                        rules.push(json!({"Name": "prefix", "Value": p}));
                    }
                    if let Some(s) = suffix {
                        rules.push(json!({"Name": "suffix", "Value": s}));
                    }
                    for ev in s3_events(events) {
                        let mut c = json!({"Event": ev, "Function": get_att(&fid, "Arn")});
                        if !rules.is_empty() {
                            c["Filter"] = json!({"S3Key": {"Rules": rules.clone()}});
                        }
                        entry.0.push(c);
                    }
                    if !entry.1.contains(&pid) {
                        entry.1.push(pid);
                    }
                }
                Trigger::Topic { topic, filter } => {
                    let sid = ids.id(
                        &format!("subscription.{fname}.{topic}"),
                        format!("{base}{}Subscription", logical(topic)),
                    );
                    let mut props = json!({
                        "TopicArn": svc_arn[topic].clone(),
                        "Protocol": "lambda",
                        "Endpoint": get_att(&fid, "Arn"),
                    });
                    if let Some(fp) = filter {
                        props["FilterPolicy"] = fp.clone();
                    }
                    res.insert(
                        sid.clone(),
                        json!({"Type": "AWS::SNS::Subscription", "Properties": props}),
                    );
                    permission(
                        &mut res,
                        format!("{sid}Permission"),
                        "sns.amazonaws.com",
                        svc_arn[topic].clone(),
                    );
                }
            }
        }
        if let Some(p) = payload {
            let iid = format!("{base}Integration");
            res.insert(
                iid,
                json!({"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
                    "ApiId": r#ref("HttpApi"),
                    "IntegrationType": "AWS_PROXY",
                    "IntegrationUri": get_att(&fid, "Arn"),
                    "PayloadFormatVersion": if p == PayloadVersion::V2 { "2.0" } else { "1.0" },
                }}),
            );
            permission(
                &mut res,
                format!("{base}HttpPermission"),
                "apigateway.amazonaws.com",
                json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"}),
            );
        }
    }

    if http {
        let mut props =
            json!({"Name": names.api(), "ProtocolType": "HTTP", "Tags": tag_map(&tags)});
        if any_cors {
            props["CorsConfiguration"] =
                json!({"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]});
        }
        res.insert(
            "HttpApi".into(),
            json!({"Type": "AWS::ApiGatewayV2::Api", "Properties": props}),
        );
        res.insert(
            "HttpApiStage".into(),
            json!({"Type": "AWS::ApiGatewayV2::Stage", "Properties": {
                "ApiId": r#ref("HttpApi"),
                "StageName": "$default",
                "AutoDeploy": true,
                "Tags": tag_map(&tags),
            }}),
        );
        outputs.insert(
            "HttpApiUrl".into(),
            json!({"Description": "Base URL of the HTTP API", "Value": get_att("HttpApi", "ApiEndpoint")}),
        );
    }

    for (bucket, (configs, perms)) in notifications {
        match service.services.get(&bucket) {
            Some(r) if r.external.is_none() => {
                let id = ids.id(&format!("bucket.{bucket}"), String::new());
                if let Some(b) = res.get_mut(&id) {
                    b["Properties"]["NotificationConfiguration"] =
                        json!({"LambdaConfigurations": configs});
                    b["DependsOn"] = json!(perms);
                }
            }
            _ => notes.push(format!(
                "the bucket `{bucket}` exists outside the template; CloudFormation cannot add notifications to it, so its storage triggers are left out of template.json (the direct deploy sets them)"
            )),
        }
    }

    let mut t = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("{} ({}) — generated by ferry {}", service.service, service.stage, env!("CARGO_PKG_VERSION")),
        "Parameters": {
            "ArtifactBucket": {
                "Type": "String",
                "Description": format!("S3 bucket holding the zips of `ferry package` under {}/{}/", service.service, service.stage),
            }
        },
        "Resources": res,
    });
    if !outputs.is_empty() {
        t["Outputs"] = Value::Object(outputs);
    }
    // Serverless Framework `resources:`, merged section by section (theirs win on a clash).
    if let Some(Value::Object(extra)) = &service.cloudformation {
        for (section, body) in extra {
            match (t.get_mut(section), body) {
                (Some(Value::Object(a)), Value::Object(b)) => {
                    for (k, v) in b {
                        a.insert(k.clone(), v.clone());
                    }
                }
                (_, b) => {
                    t[section] = b.clone();
                }
            }
        }
    }
    (t, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_pascal_case() {
        assert_eq!(logical("job-events"), "JobEvents");
        assert_eq!(logical("GET /greet/{name}"), "GETGreetName");
        assert_eq!(logical("a_b.c"), "ABC");
    }
}
