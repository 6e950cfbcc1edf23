//! Lambda functions in the emulator, standing in for the user's functions an example
//! routes to (the operator only grants API Gateway permission to invoke them).

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_types::Blob;

/// Create `name` in the account `config` acts in, unless it exists; returns its ARN.
pub async fn ensure_function(config: &aws_types::SdkConfig, name: &str) -> anyhow::Result<String> {
    let lambda = aws_sdk_lambda::Client::new(config);
    if let Ok(out) = lambda.get_function().function_name(name).send().await
        && let Some(arn) = out.configuration().and_then(|c| c.function_arn())
    {
        return Ok(arn.to_owned());
    }
    let iam = aws_sdk_iam::Client::new(config);
    let role_name = format!("{name}-exec");
    // Tests may race to create the same function: whoever loses reads the winner's.
    let created = iam
        .create_role()
        .role_name(&role_name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await;
    let role_arn = match created {
        Ok(out) => out.role().map(|r| r.arn().to_owned()).unwrap_or_default(),
        Err(_) => iam
            .get_role()
            .role_name(&role_name)
            .send()
            .await?
            .role()
            .map(|r| r.arn().to_owned())
            .unwrap_or_default(),
    };
    let created = lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Nodejs20x)
        .handler("index.handler")
        .role(role_arn)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(empty_zip()))
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(out) => Ok(out.function_arn().unwrap_or_default().to_owned()),
        Err(e) => {
            let existing = lambda.get_function().function_name(name).send().await;
            match existing
                .ok()
                .and_then(|o| o.configuration()?.function_arn().map(str::to_owned))
            {
                Some(arn) => Ok(arn),
                None => Err(e.into()),
            }
        }
    }
}

/// A valid zip archive with no entries: the emulator stores code, it never runs it here.
pub fn empty_zip() -> Vec<u8> {
    let mut zip = vec![0x50, 0x4b, 0x05, 0x06];
    zip.extend_from_slice(&[0; 18]);
    zip
}

/// The function names of every Lambda ARN in a YAML/JSON text.
pub fn function_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == '}')
        .filter(|word| {
            word.starts_with("arn:aws") && word.contains(":lambda:") && word.contains(":function:")
        })
        .filter_map(|arn| arn.split(":function:").nth(1))
        .map(|rest| rest.split(':').next().unwrap_or(rest).to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_function_names_in_an_example() {
        let text = "functionArn: arn:aws:lambda:us-east-1:123456789012:function:one\n\
                    functionArn: \"arn:aws:lambda:us-east-1:123456789012:function:two:live\"";
        assert_eq!(super::function_names(text), vec!["one", "two"]);
    }
}
