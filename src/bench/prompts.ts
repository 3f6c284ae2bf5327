// The built-in benchmark prompts: varied lengths and topics, so batches mix short and long prefills.
export const BUILTIN_PROMPTS: readonly string[] = [
  "Explain in simple terms why the sky is blue.",
  "Write a short poem about a lighthouse keeper who has never seen the sea in daylight.",
  "List five practical tips for keeping a sourdough starter alive while travelling.",
  "Summarize the plot of a detective story set on a night train crossing the Alps.",
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  "Translate into French: The meeting has been moved to Thursday afternoon.",
  "What are the trade-offs between batching requests and serving them one at a time?",
  "Once upon a time, in a village at the edge of a great forest,",
  "Describe the water cycle to a ten-year-old.",
  "Give three arguments for and three against remote work.",
  "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING",
  "The recipe for a good cup of tea starts with",
];
