/**
 * Request bodies shared by the mock, model-record and contract suites.
 */

/** The seed document's create example: the churn classifier. */
export const seedModelCreate = {
  name: 'Churn Prediction Model',
  slug: 'churn-prediction-model',
  description: 'Predicts account churn risk for customer success workflows.',
  product_type: 'ML Model',
  provider: 'ml-platform',
  environment: 'production',
  risk_classification: 'limited',
  lifecycle_stage: 'monitoring',
  model_family: 'traditional_ml',
  model_task_type: 'classification',
  model_architecture: 'XGBoost',
  framework: 'scikit-learn',
  intended_use: 'Prioritize customer success outreach.',
  limitations: 'Not calibrated for accounts with less than 30 days of activity.',
  deployment_status: 'production',
  serving_url: 'https://models.example.com/churn',
  input_schema: { type: 'object', required: ['account_id', 'usage_30d'] },
  output_schema: { type: 'object', properties: { churn_probability: { type: 'number' } } },
} as const;
