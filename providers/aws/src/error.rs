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
