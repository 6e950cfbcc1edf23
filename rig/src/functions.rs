//! Lambda functions in the emulator, standing in for the user's functions an example
//! routes to (the operator only grants API Gateway permission to invoke them). Each has
//! real code the emulator's data plane runs: the seed's handlers from
//! `examples/functions/` for the seed's functions, else a handler that says its name.

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_types::Blob;

/// A function's code: its runtime, the handler file's name (the handler is
/// `<file stem>.handler`) and the file's text.
pub struct Code {
    pub runtime: Runtime,
    pub file: String,
    pub source: String,
}

/// Create `name` in the account `config` acts in, unless it exists; returns its ARN.
pub async fn ensure_function(config: &aws_types::SdkConfig, name: &str) -> anyhow::Result<String> {
    let code = Code {
        runtime: Runtime::Nodejs20x,
        file: "index.mjs".into(),
        source: code_for(name)?,
    };
    ensure_function_with(config, name, &code).await
}

/// Create `name` with `code` unless it exists; returns its ARN.
pub async fn ensure_function_with(
    config: &aws_types::SdkConfig,
    name: &str,
    code: &Code,
) -> anyhow::Result<String> {
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
        .runtime(code.runtime.clone())
        .handler(format!(
            "{}.handler",
            code.file.split('.').next().unwrap_or("index")
        ))
        .role(role_arn)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_of(&code.file, &code.source)?))
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

/// The handler code a function named `name` gets: the seed's (`examples/functions/`) for
/// the seed's functions, else one that answers its own name.
pub fn code_for(name: &str) -> anyhow::Result<String> {
    let seed = |file: &str| -> anyhow::Result<String> {
        let path = crate::repo_root().join("examples/functions").join(file);
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    if name.ends_with("-private") {
        return seed("private.mjs");
    }
    if name.ends_with("-public") {
        return seed("public.mjs");
    }
    Ok(format!(
        "export async function handler(event) {{\n  return {{ statusCode: 200, body: {name:?} }};\n}}\n"
    ))
}

/// The rig's Lambda REQUEST authorizer (`rig/functions/authorizer.mjs`): allows
/// "allow:<user>" with the user in its context, refuses anything else.
pub fn authorizer_code() -> Code {
    Code {
        runtime: Runtime::Nodejs20x,
        file: "index.mjs".into(),
        source: include_str!("../functions/authorizer.mjs").into(),
    }
}

/// An integration that answers with the `requestContext.authorizer` API Gateway gave it
/// (`rig/functions/context-echo.mjs`).
pub fn context_echo_code() -> Code {
    Code {
        runtime: Runtime::Nodejs20x,
        file: "index.mjs".into(),
        source: include_str!("../functions/context-echo.mjs").into(),
    }
}

/// A zip archive holding one file (the form Lambda takes code in).
pub fn zip_of(file: &str, contents: &str) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(file, zip::write::SimpleFileOptions::default())?;
    std::io::Write::write_all(&mut zip, contents.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// Replace `name`'s code with the handler in `file` (as index.mjs), as
/// `aws lambda update-function-code` does.
pub async fn update_code(
    config: &aws_types::SdkConfig,
    name: &str,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let code =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    aws_sdk_lambda::Client::new(config)
        .update_function_code()
        .function_name(name)
        .zip_file(Blob::new(zip_of("index.mjs", &code)?))
        .send()
        .await?;
    Ok(())
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
