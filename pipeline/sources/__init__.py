"""Where data comes from: the company CSV format, the transcript format, and fetching them over HTTP."""
