//! AWS errors, classified: retryable (throttling, eventual consistency, 5xx, timeouts) or not,
//! with the service's error code kept so callers can tell "not found" and "already exists".

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ferry_core::engine::ProviderError;

/// One failed AWS call.
#[derive(Debug, Clone)]
pub struct Fail {
    /// The service's error code (`ResourceNotFoundException`, `NoSuchEntity`, ...).
    pub code: Option<String>,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
    /// Whether another try may succeed.
    pub retryable: bool,
}

/// Error codes that mean "slow down".
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "PriorRequestNotComplete",
];

/// Error codes that mean the resource does not exist.
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
    "NotFound",
    "NoSuchBucket",
    "NoSuchKey",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
];

impl Fail {
    /// A failure of ferry's own making.
    pub fn new(message: impl Into<String>) -> Self {
        Fail {
            code: None,
            status: None,
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that another try may fix.
    pub fn retry(message: impl Into<String>) -> Self {
        Fail {
            retryable: true,
            ..Fail::new(message)
        }
    }

    /// True when the error code is `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when the resource does not exist.
    pub fn not_found(&self) -> bool {
        self.code.as_deref().is_some_and(|c| NOT_FOUND.contains(&c))
            || (self.status == Some(404) && self.code.is_none())
    }

    /// True when the message mentions `text` (AWS signals some conditions only there).
    pub fn says(&self, text: &str) -> bool {
        self.message.to_lowercase().contains(&text.to_lowercase())
    }

    /// The error for the engine, with what was being done.
    pub fn context(self, what: &str) -> ProviderError {
        ProviderError {
            message: format!("{what}: {}", self.message),
            retryable: self.retryable,
        }
    }
}

impl<E> From<SdkError<E, HttpResponse>> for Fail
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(e: SdkError<E, HttpResponse>) -> Self {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_owned);
        let transport = matches!(
            e,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        let message = match (&code, e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            _ => DisplayErrorContext(&e).to_string(),
        };
        let retryable = transport
            || status.is_some_and(|s| s >= 500 || s == 429)
            || code.as_deref().is_some_and(|c| THROTTLING.contains(&c))
            // A new IAM role is not visible to Lambda for some seconds.
            || message.contains("cannot be assumed")
            || message.contains("role defined for the function")
            // Lambda: an update is still in progress.
            || (code.as_deref() == Some("ResourceConflictException")
                && message.contains("in progress"))
            || code.as_deref() == Some("ResourceInUseException") && message.contains("in use");
        Fail {
            code,
            status,
            message,
            retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::create_function::CreateFunctionError;
    use aws_sdk_lambda::types::error::{
        InvalidParameterValueException, ResourceNotFoundException, TooManyRequestsException,
    };
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn raw(status: u16) -> HttpResponse {
        Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(""))
    }

    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[test]
    fn a_role_not_yet_visible_to_lambda_is_retried() {
        let e = CreateFunctionError::InvalidParameterValueException(
            InvalidParameterValueException::builder()
                .message("The role defined for the function cannot be assumed by Lambda.")
                .meta(meta(
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                ))
                .build(),
        );
        let f = Fail::from(SdkError::service_error(e, raw(400)));
        assert!(f.retryable, "{f:?}");
        assert!(f.message.contains("cannot be assumed"));
    }

    #[test]
    fn throttling_is_retried_and_a_bad_parameter_is_not() {
        let e = CreateFunctionError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("Rate exceeded")
                .meta(meta("TooManyRequestsException", "Rate exceeded"))
                .build(),
        );
        assert!(Fail::from(SdkError::service_error(e, raw(429))).retryable);
        let e = CreateFunctionError::InvalidParameterValueException(
            InvalidParameterValueException::builder()
                .message("Value 99999 for MemorySize is invalid")
                .meta(meta(
                    "InvalidParameterValueException",
                    "Value 99999 for MemorySize is invalid",
                ))
                .build(),
        );
        let f = Fail::from(SdkError::service_error(e, raw(400)));
        assert!(!f.retryable, "{f:?}");
        assert!(!f.not_found());
    }

    #[test]
    fn not_found_is_told_apart() {
        let e = CreateFunctionError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Function not found")
                .meta(meta("ResourceNotFoundException", "Function not found"))
                .build(),
        );
        let f = Fail::from(SdkError::service_error(e, raw(404)));
        assert!(f.not_found() && !f.retryable, "{f:?}");
        assert_eq!(f.status, Some(404));
    }
}
