/* An image linked with an executable stack (-z execstack): the kernel maps
 * its stack writable and executable at exec, with no mmap or mprotect by the
 * process. test_anonymous_exec_memory runs it. */
int main(void)
{
    return 0;
}
