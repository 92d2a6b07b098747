"""The controller: from PredictiveAutoscalers and the store to scaling actions and status."""
