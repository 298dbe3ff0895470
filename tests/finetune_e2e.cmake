# Fine-tuning end to end on Debian's fortunes (tests/finetune_e2e.sh): a
# bilingual vocab and a short bert-tiny pretraining, then on 2 ranks topic
# classification (7 fortune files, English and Chinese) and Chinese word
# segmentation (BMES tags from python3-jieba, with the CRF), each clearly
# above its trivial baseline; ddpt predict scores exactly what the
# evaluation scored; ddpt export writes a BertForSequenceClassification.
add_test(NAME finetune_e2e_fortunes
         COMMAND ${CMAKE_SOURCE_DIR}/tests/finetune_e2e.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(finetune_e2e_fortunes PROPERTIES LABELS "e2e;slow;mpi" TIMEOUT 600)
