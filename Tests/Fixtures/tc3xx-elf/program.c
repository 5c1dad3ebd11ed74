/* A program whose sections have known sizes, linked by tc397.ld at TC397 addresses. */
int data_block[256] = {1};
char lmu_block[4096] __attribute__((section(".lmu_data"))) = {1};
char bss_block[8192];
const char table[300] = "lookup";
int compute(int x) { return x * 3 + 1; }
