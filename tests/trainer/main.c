/* test_trainer: trainer/ (parameters, layers, model, optimizer, loop). */
#include "harness_impl.h"

extern const harness_suite trainer_blas_suite;
extern const harness_suite trainer_gemm_suite;
extern const harness_suite trainer_optimizer_suite;
extern const harness_suite trainer_params_suite;
extern const harness_suite trainer_layers_suite;
extern const harness_suite trainer_bert_suite;
extern const harness_suite trainer_bert_tasks_suite;
extern const harness_suite trainer_run_config_suite;
extern const harness_suite trainer_predict_suite;
extern const harness_suite trainer_heads_suite;
extern const harness_suite trainer_task_metrics_suite;

int main(void) {
  const harness_suite *suites[] = {&trainer_blas_suite, &trainer_optimizer_suite,
                                     &trainer_params_suite,   &trainer_layers_suite,
                                     &trainer_bert_suite,     &trainer_bert_tasks_suite,
                                     &trainer_run_config_suite,
                                     &trainer_predict_suite,  &trainer_heads_suite,
                                     &trainer_task_metrics_suite, &trainer_gemm_suite, NULL};
  return harness_run(suites);
}
